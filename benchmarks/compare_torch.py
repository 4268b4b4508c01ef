"""slidenet vs PyTorch (CPU) on the lecture MNIST CNN and LeNet-5: training and inference img/s.

Each measurement runs in a fresh process with the same thread count (one framework's threads keep
spinning after its work and slowed the other when they shared a process). Each round times
slidenet, torch NCHW and torch channels_last back to back (the order rotates every round) so
machine drift cancels; every figure is the median over rounds, and ratios are taken within a round
before the median. slidenet gets ``SLIDENET_NUM_THREADS`` = ``--threads`` (its split training
step, slidenet/models/sharded_step.py), torch ``torch.set_num_threads``.

Usage:
    python benchmarks/compare_torch.py                 # batch 100, 7 rounds
    python benchmarks/compare_torch.py --batch-sizes 32 100 256 --rounds 5
    python benchmarks/compare_torch.py --write benchmarks/results.md --section unset
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time

import numpy as np

# The environment as the user gave it: slidenet's compiled kernels set OMP_WAIT_POLICY=PASSIVE in
# this process when they load (check_same_function runs them), and torch's OpenMP threads must
# not inherit that in their own processes (it made torch 5-15% slower here).
USER_ENV = dict(os.environ)


def torch_net(name, classes=10):
    import torch.nn as nn

    if name == "mnist_cnn":
        return nn.Sequential(
            nn.Conv2d(1, 32, 5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(3136, 1024),
            nn.ReLU(),
            nn.Linear(1024, classes),
        )
    return nn.Sequential(  # lenet5 on 28x28: 'same' first convolution
        nn.Conv2d(1, 6, 5, padding=2),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(400, 120),
        nn.ReLU(),
        nn.Linear(120, 84),
        nn.ReLU(),
        nn.Linear(84, classes),
    )


def slidenet_runner(name, batch):
    import slidenet
    from slidenet import applications

    slidenet.utils.set_random_seed(0)
    model = getattr(applications, name)(input_shape=(28, 28, 1))
    model.compile(slidenet.optimizers.Adam(1e-3), "sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    x = rng.random((batch, 28, 28, 1), dtype=np.float32)
    y = rng.integers(0, 10, batch)
    xs = rng.random((1000, 28, 28, 1), dtype=np.float32)
    return (
        lambda: model.train_on_batch(x, y),
        lambda: model.predict(xs, batch_size=100),
    )


def torch_runner(name, batch, channels_last):
    import torch

    torch.manual_seed(0)
    net = torch_net(name)
    x = torch.rand(batch, 1, 28, 28)
    y = torch.randint(0, 10, (batch,))
    xs = torch.rand(1000, 1, 28, 28)
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
        xs = xs.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.Adam(net.parameters(), 1e-3)

    def train():
        opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(net(x), y)
        loss.backward()
        opt.step()

    def infer_one_call():
        with torch.inference_mode():
            return net(xs)

    def infer_chunked():
        with torch.inference_mode():
            return [net(xs[i : i + 100]) for i in range(0, 1000, 100)]

    return train, infer_one_call, infer_chunked


def check_same_function(name, batch=4, seed=0):
    """Before timing: the two nets compute the same function. Returns the largest relative error.

    slidenet's float32 net (weights from its own initializer) is copied into the torch net, which
    runs in float64 on a contiguous NCHW input: torch 2.13's float32 conv on channels-last memory
    gave wrong gradients on AVX2 machines, so a float32 torch result is no reference. Compares the
    class probabilities and the loss gradient of every weight (those of one training step).
    """
    import torch

    import slidenet
    from slidenet import applications

    slidenet.utils.set_random_seed(seed)
    model = getattr(applications, name)(input_shape=(28, 28, 1))
    model.compile(slidenet.optimizers.SGD(0.1), "sparse_categorical_crossentropy")
    rng = np.random.default_rng(seed)
    x = rng.random((batch, 28, 28, 1), dtype=np.float32)
    y = rng.integers(0, 10, batch)
    probs = model.predict(x, verbose=0)
    before = [[w.copy() for w in layer.get_weights()] for layer in model.layers]
    model.train_on_batch(x, y)  # fills layer.grads (the gradients at the weights before the step)

    net = torch_net(name).double()
    modules = [m for m in net if isinstance(m, torch.nn.Conv2d | torch.nn.Linear)]
    layers = [layer for layer in model.layers if layer.weights]
    weights = [w for w in before if w]
    pairs = []  # (torch parameter, slidenet gradient in torch's layout)
    with torch.no_grad():
        for i, (module, layer, (kernel, bias)) in enumerate(
            zip(modules, layers, weights, strict=True)
        ):
            dkernel, dbias = layer.grads
            if kernel.ndim == 4:  # (Fh, Fw, D, K) -> (K, D, Fh, Fw)
                to_torch = lambda k: np.transpose(k, (3, 2, 0, 1))  # noqa: E731
            elif i > 0 and layers[i - 1].weights[0].ndim == 4:  # first Dense after Flatten
                h, w, c = model.layers[model.layers.index(layer) - 1].input_shape[1:]
                to_torch = lambda k, h=h, w=w, c=c: (  # noqa: E731
                    k.reshape(h, w, c, -1).transpose(2, 0, 1, 3).reshape(h * w * c, -1).T
                )
            else:  # (D_in, units) -> (units, D_in)
                to_torch = lambda k: k.T  # noqa: E731
            module.weight.copy_(torch.tensor(to_torch(kernel).astype(np.float64)))
            module.bias.copy_(torch.tensor(bias.astype(np.float64)))
            pairs += [(module.weight, to_torch(dkernel)), (module.bias, dbias)]
    xt = torch.tensor(np.moveaxis(x, -1, 1).astype(np.float64)).contiguous()
    logits = net(xt)
    torch.nn.functional.cross_entropy(logits, torch.tensor(y)).backward()

    def rel(ours, ref):
        ref = ref.detach().numpy()
        return float(np.max(np.abs(ours - ref)) / max(np.max(np.abs(ref)), 1e-30))

    errors = [rel(probs, torch.softmax(logits, 1))] + [rel(g, p.grad) for p, g in pairs]
    return max(errors)


_MEMORY_CHILD = """
import resource, sys
import numpy as np
framework, name, batch, steps = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
sys.path.insert(0, sys.argv[5])
import compare_torch as ct
if framework == "slidenet":
    train = ct.slidenet_runner(name, batch)[0]
else:
    import torch
    torch.set_num_threads(2)
    train = ct.torch_runner(name, batch, channels_last=framework == "torch channels_last")[0]
def peak_kib():
    # VmHWM starts afresh at exec; ru_maxrss would inherit the parent's peak through fork
    try:
        with open("/proc/self/status") as f:
            return next(int(ln.split()[1]) for ln in f if ln.startswith("VmHWM:"))
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
base = peak_kib()
for _ in range(steps):
    train()
print(base, peak_kib())
"""


def peak_memory(name, batch, steps=20):
    """Peak resident memory (MiB) of a fresh process that trains ``steps`` steps, per framework,
    and how much of it was there before the first step (imports, model, data): VmHWM."""
    import subprocess

    here = os.path.dirname(os.path.abspath(__file__))
    result = {}
    for framework in ("slidenet", "torch NCHW", "torch channels_last"):
        out = subprocess.run(
            [sys.executable, "-c", _MEMORY_CHILD, framework, name, str(batch), str(steps), here],
            capture_output=True,
            text=True,
            env=USER_ENV,
            check=True,
        ).stdout.split()
        result[framework] = (int(out[0]) / 1024, int(out[1]) / 1024)
    return result


FRAMEWORKS = ("slidenet", "torch NCHW", "torch channels_last")
INFERENCE_KINDS = (
    "slidenet",
    "torch NCHW",
    "torch NCHW chunked",
    "torch channels_last",
    "torch channels_last chunked",
)

_TIMING_CHILD = """
import json, os, sys
sys.path.insert(0, sys.argv[1])
framework, name, batch, seconds, threads, infer = sys.argv[2:8]
batch, seconds, threads, infer = int(batch), float(seconds), int(threads), infer == "1"
import compare_torch as ct
rates = {}
if framework == "slidenet":
    train, predict = ct.slidenet_runner(name, batch)
    rates["train"] = ct.rate(train, batch, seconds)
    if infer:
        rates["slidenet"] = ct.rate(predict, 1000, seconds)
else:
    import torch
    torch.set_num_threads(threads)
    train, one_call, chunked = ct.torch_runner(name, batch, framework == "torch channels_last")
    rates["train"] = ct.rate(train, batch, seconds)
    if infer:
        rates[framework] = ct.rate(one_call, 1000, seconds)
        rates[framework + " chunked"] = ct.rate(chunked, 1000, seconds)
print(json.dumps(rates))
"""


def measure(framework, name, batch, seconds, threads, infer):
    """Training (and inference) img/s of one framework in a fresh process: the threads of one
    framework keep spinning for a while after its work, which slowed the other one (up to 3x)
    when both ran in one process. Returns {"train": img/s, inference kind: img/s, ...}."""
    import json
    import subprocess

    here = os.path.dirname(os.path.abspath(__file__))
    env = {**USER_ENV, "SLIDENET_NUM_THREADS": str(threads)}
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            _TIMING_CHILD,
            here,
            framework,
            name,
            str(batch),
            str(seconds),
            str(threads),
            "1" if infer else "0",
        ],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def rate(fn, images, seconds):
    """Images per second of fn (which processes ``images`` per call), timed for ``seconds``."""
    fn()
    n, t0 = 0, time.perf_counter()
    while True:
        fn()
        n += 1
        elapsed = time.perf_counter() - t0
        if elapsed >= seconds:
            return n * images / elapsed


def machine_line():
    parts = [platform.processor() or platform.machine()]
    try:
        with open("/proc/cpuinfo") as f:
            model = next((ln.split(":", 1)[1].strip() for ln in f if "model name" in ln), "")
        parts = [model or parts[0]]
    except OSError:
        pass
    try:
        from threadpoolctl import threadpool_info

        for info in threadpool_info():
            if info.get("user_api") == "blas":
                parts.append(
                    f"{info['internal_api']} {info['version']} ({info.get('architecture')}, "
                    f"{info['num_threads']} threads)"
                )
    except ImportError:
        parts.append("threadpoolctl not installed: BLAS kernel unknown")
    import torch

    parts.append(
        f"numpy {np.__version__}, torch {torch.__version__} ({torch.get_num_threads()} thr)"
    )
    blas_env = {k: v for k, v in USER_ENV.items() if k.startswith(("OPENBLAS", "OMP_"))}
    parts.append(f"env {blas_env or 'unset'}")
    import slidenet

    parts.append(f"slidenet kernels: {slidenet.ops.backend()}")
    return "; ".join(parts)


_COMPILE_CHILD = """
import os, sys, time
import numpy as np
sys.path.insert(0, sys.argv[1])
t0 = time.perf_counter()
import slidenet
t1 = time.perf_counter()
import compare_torch as ct
train, infer = ct.slidenet_runner(sys.argv[2], 8)
train(); infer()
t2 = time.perf_counter()
print(f"{t1 - t0:.3f} {t2 - t1:.3f} {slidenet.ops.backend()}")
"""


def compile_times(name="lenet5"):
    """(import s, first train step + predict s) in a fresh process with an empty kernel cache,
    and again with the cache warm: what compiling the kernels costs once, and afterwards."""
    import shutil
    import subprocess
    import tempfile

    here = os.path.dirname(os.path.abspath(__file__))
    results = []
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        for _ in range(2):  # cold, then warm
            out = subprocess.run(
                [sys.executable, "-c", _COMPILE_CHILD, here, name],
                capture_output=True,
                text=True,
                env=env,
                check=True,
            ).stdout.split()
            results.append((float(out[0]), float(out[1]), out[2]))
        shutil.rmtree(cache, ignore_errors=True)
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["mnist_cnn", "lenet5"])
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[100])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--seconds", type=float, default=2.0, help="timing window per measurement")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--write",
        help="also write the table as Markdown into this file, replacing only its --section "
        "(other sections of the file are kept)",
    )
    parser.add_argument("--section", default="main", help="name of the section --write replaces")
    args = parser.parse_args(argv)
    args.argv = sys.argv[1:] if argv is None else list(argv)

    import torch

    torch.set_num_threads(args.threads)
    try:  # the same number of BLAS threads for NumPy
        from threadpoolctl import threadpool_limits

        threadpool_limits(args.threads, user_api="blas")
    except ImportError:
        print("threadpoolctl is not installed: NumPy's BLAS threads are not set", file=sys.stderr)
    (cold_import, cold_first, kind), (warm_import, warm_first, _) = compile_times()
    print(
        f"kernels: {kind}; first process (empty kernel cache): import {cold_import:.2f} s, first "
        f"step {cold_first:.2f} s; next process: import {warm_import:.2f} s, first step "
        f"{warm_first:.2f} s"
    )
    for name in args.models:
        err = check_same_function(name)
        print(f"{name}: slidenet float32 vs torch float64, largest relative error {err:.1e}")
        if err > 1e-4:
            raise SystemExit(f"{name}: the two nets disagree (relative error {err:.1e})")
    rows = []
    for name in args.models:
        for batch in args.batch_sizes:
            infer = batch == args.batch_sizes[0]
            train_rates = {k: [] for k in FRAMEWORKS}
            infer_rates = {k: [] for k in INFERENCE_KINDS} if infer else {"slidenet": []}
            for r in range(args.rounds):  # a fresh process per framework and round
                for k in FRAMEWORKS[r % 3 :] + FRAMEWORKS[: r % 3]:
                    rates = measure(k, name, batch, args.seconds, args.threads, infer)
                    train_rates[k].append(rates.pop("train"))
                    for kind, value in rates.items():
                        infer_rates[kind].append(value)
            med = {k: statistics.median(v) for k, v in train_rates.items()}

            def ratio(rates, other):
                return statistics.median(
                    a / b for a, b in zip(rates["slidenet"], rates[other], strict=True)
                )

            row = {
                "model": name,
                "batch": batch,
                "train": med,
                "train_vs_nchw": ratio(train_rates, "torch NCHW"),
                "train_vs_cl": ratio(train_rates, "torch channels_last"),
            }
            if infer_rates["slidenet"]:
                best = [
                    max(vals)
                    for vals in zip(
                        *(v for k, v in infer_rates.items() if k != "slidenet"), strict=True
                    )
                ]
                row["infer"] = statistics.median(infer_rates["slidenet"])
                row["infer_torch_best"] = statistics.median(best)
                row["infer_vs_best"] = statistics.median(
                    a / b for a, b in zip(infer_rates["slidenet"], best, strict=True)
                )
            if batch == args.batch_sizes[0]:
                row["memory"] = peak_memory(name, batch)
            rows.append(row)
            print(format_row(row), flush=True)
    table = markdown(rows, machine_line(), args)
    print("\n" + table)
    if args.write:
        write_section(args.write, args.section, table)
    return 0


def write_section(path, section, text):
    """Put ``text`` between the markers of ``section`` in the Markdown file at ``path`` (replacing
    what was there, or appending the section), atomically."""
    begin, end = f"<!-- compare_torch: {section} -->", f"<!-- /compare_torch: {section} -->"
    try:
        with open(path) as f:
            old = f.read()
    except FileNotFoundError:
        old = ""
    block = f"{begin}\n{text}\n{end}"
    if begin in old and end in old:
        new = old[: old.index(begin)] + block + old[old.index(end) + len(end) :]
    else:
        new = (old.rstrip("\n") + "\n\n" if old else "") + block + "\n"
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(new)
    os.replace(tmp, path)


def format_row(row):
    t = row["train"]
    text = (
        f"{row['model']:10s} batch {row['batch']:4d}  train img/s: slidenet {t['slidenet']:7.0f}  "
        f"torch NCHW {t['torch NCHW']:7.0f}  channels_last {t['torch channels_last']:7.0f}  "
        f"ratio {row['train_vs_nchw']:.2f}x NCHW, {row['train_vs_cl']:.2f}x channels_last"
    )
    if "infer" in row:
        text += (
            f"\n{'':10s} inference 1000 img: slidenet {row['infer']:7.0f} img/s, torch best "
            f"{row['infer_torch_best']:7.0f} img/s, ratio {row['infer_vs_best']:.2f}x"
        )
    if "memory" in row:
        text += (
            f"\n{'':10s} peak RSS of a training process (MiB, before the first step): "
            + ", ".join(f"{k} {peak:.0f} ({base:.0f})" for k, (base, peak) in row["memory"].items())
        )
    return text


def markdown(rows, machine, args):
    lines = [
        f"Machine: {machine}",
        "",
        f"Command: `python benchmarks/compare_torch.py {' '.join(args.argv)}` "
        f"(medians over {args.rounds} alternating rounds, float32, {args.threads} threads)",
        "",
        "| model | batch | slidenet train img/s | torch NCHW | torch channels_last | "
        "ratio vs NCHW | ratio vs channels_last | inference ratio vs torch best |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        t = r["train"]
        infer = f"{r['infer_vs_best']:.2f}x" if "infer" in r else "-"
        lines.append(
            f"| {r['model']} | {r['batch']} | {t['slidenet']:.0f} | {t['torch NCHW']:.0f} | "
            f"{t['torch channels_last']:.0f} | {r['train_vs_nchw']:.2f}x | "
            f"{r['train_vs_cl']:.2f}x | {infer} |"
        )
    memory = [r for r in rows if "memory" in r]
    if memory:
        lines += [
            "",
            "Peak resident memory of a separate process training 20 steps (MiB; in brackets, "
            "before the first step: imports, model, data):",
            "",
            "| model | batch | slidenet | torch NCHW | torch channels_last |",
            "|---|---|---|---|---|",
        ]
        for r in memory:
            cells = " | ".join(f"{peak:.0f} ({base:.0f})" for base, peak in r["memory"].values())
            lines.append(f"| {r['model']} | {r['batch']} | {cells} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
