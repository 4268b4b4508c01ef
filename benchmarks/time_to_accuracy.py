"""Time to accuracy: the lecture CNN trained by slidenet and by PyTorch, in lockstep.

Both frameworks train ``slidenet.applications.mnist_cnn`` on Fashion-MNIST with one recipe:

* the same initial weights (slidenet's, seeded; copied into torch's NCHW layout),
* the same data order (one permutation per epoch, drawn from the seed; the same batches),
* Adam (learning rate ``--lr``, epsilon 1e-7 as in Keras, multiplied by ``--decay`` after every
  epoch), batches of ``--batch-size``, float32, ``--threads`` threads each.

Each framework runs in a worker process of its own; the two train in lockstep, one epoch each in
turn (the other waits, blocked on a pipe), so that load from other programs on a shared machine
hits both alike. After every epoch both evaluate the whole test set. The report gives, per
epoch, the training wall and CPU time and the test accuracy of each, and the cumulative training
wall time each needs to first reach each ``--targets`` accuracy (evaluation time excluded). The
curves agreeing epoch by epoch (within ``--tolerance``) is the check that the recipes are the
same; before training, both must give the same test accuracy (the same weights).

    python benchmarks/time_to_accuracy.py                     # the README run (6 epochs)
    python benchmarks/time_to_accuracy.py --limit 500 --epochs 1 --no-check   # smoke run

Measured (the defaults, shared 2-core machine, load average 1.7-3.6 from other programs, 18 min):
the curves agree within 0.23 points at every epoch (88.14 / 88.04 % after epoch 1, 92.11 /
92.28 % after epoch 6); both reach 90 % after epoch 2 and 91.6 % after epoch 4, slidenet in
338 s wall (261 s CPU), torch in 391 s wall (236 s CPU). The wall times moved with the load
(one torch epoch took 102 s wall for 54 s CPU); by CPU time torch needed a tenth less.

torch (the CPU build ``torch==2.13.0``, in the ``test`` extra) is imported only by its worker.
Exit status 1 when the curves disagree or slidenet misses the last target (``--no-check``: 0).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import platform
import sys
import time

import numpy as np


def load_data(path, limit):
    """Fashion-MNIST as float32 NHWC in [0, 1] (the first ``limit`` training and test images)."""
    from slidenet.datasets import fashion_mnist

    (x_train, y_train), (x_test, y_test) = fashion_mnist.load_data(path)
    if limit:
        x_train, y_train, x_test, y_test = (a[:limit] for a in (x_train, y_train, x_test, y_test))

    def prep(x):
        return (np.asarray(x, np.float32) / np.float32(255))[..., None]

    return prep(x_train), np.asarray(y_train, np.int64), prep(x_test), np.asarray(y_test, np.int64)


def initial_model(seed):
    """slidenet's mnist_cnn with the seeded initial weights both frameworks start from."""
    from slidenet import applications
    from slidenet.utils import set_random_seed

    set_random_seed(seed)
    return applications.mnist_cnn(input_shape=(28, 28, 1))


def torch_state(model):
    """slidenet's weights in torch's layout: a list of (weight, bias) for the conv and linear
    modules (kernels (Fh, Fw, D, K) -> (K, D, Fh, Fw); the first Dense after Flatten re-ordered
    from NHWC to NCHW flattening; other Dense kernels transposed)."""
    state, previous, flatten_input = [], None, None
    for layer in model.layers:
        weights = layer.get_weights()
        if weights:
            kernel, bias = weights
            if kernel.ndim == 4:
                kernel = kernel.transpose(3, 2, 0, 1)
            elif previous is not None and previous.ndim == 4:
                h, w, c = flatten_input[1:]
                kernel = kernel.reshape(h, w, c, -1).transpose(2, 0, 1, 3).reshape(h * w * c, -1).T
            else:
                kernel = kernel.T
            state.append((np.ascontiguousarray(kernel), bias.copy()))
            previous = weights[0]
        if type(layer).__name__ == "Flatten":
            flatten_input = layer.input_shape
    return state


def torch_net(state):
    """The lecture CNN in torch (NCHW), with the weights of ``state``."""
    import torch
    import torch.nn as nn
    from compare_torch import torch_net as lecture_nets  # one definition, in benchmarks/

    net = lecture_nets("mnist_cnn")
    modules = [m for m in net if isinstance(m, nn.Conv2d | nn.Linear)]
    with torch.no_grad():
        for module, (kernel, bias) in zip(modules, state, strict=True):
            module.weight.copy_(torch.from_numpy(kernel))
            module.bias.copy_(torch.from_numpy(bias))
    return net


def batches(n, batch_size, seed, epoch):
    """The batches of one epoch: index arrays of a permutation drawn from (seed, epoch)."""
    order = np.random.default_rng([seed, epoch]).permutation(n)
    return [order[i : i + batch_size] for i in range(0, n, batch_size)]


def slidenet_trainer(args, data):
    """(train_epoch(epoch, lr) -> (loss, acc), evaluate() -> accuracy) for slidenet."""
    from slidenet.optimizers import Adam

    x, y, x_test, y_test = data
    model = initial_model(args.seed)
    model.compile(Adam(learning_rate=args.lr), "sparse_categorical_crossentropy", ["accuracy"])

    def train_epoch(epoch, lr):
        model.optimizer.learning_rate = lr
        total = correct = 0.0
        for idx in batches(len(x), args.batch_size, args.seed, epoch):
            loss, acc = model.train_on_batch(x[idx], y[idx])
            total += loss * len(idx)
            correct += acc * len(idx)
        return total / len(x), correct / len(x)

    def evaluate():
        return float(model.evaluate(x_test, y_test, batch_size=500, verbose=0)[1])

    return train_epoch, evaluate


def torch_trainer(args, data):
    """(train_epoch, evaluate) for torch, from the same initial weights and data."""
    import torch

    torch.set_num_threads(args.threads)
    x, y, x_test, y_test = data
    x, x_test = (
        torch.from_numpy(np.ascontiguousarray(a.transpose(0, 3, 1, 2))) for a in (x, x_test)
    )
    y, y_test = torch.from_numpy(y), torch.from_numpy(y_test)
    net = torch_net(torch_state(initial_model(args.seed)))
    opt = torch.optim.Adam(net.parameters(), lr=args.lr, eps=1e-7)

    def train_epoch(epoch, lr):
        for group in opt.param_groups:
            group["lr"] = lr
        net.train()
        total = correct = 0.0
        for idx in batches(len(x), args.batch_size, args.seed, epoch):
            idx = torch.from_numpy(idx)
            opt.zero_grad(set_to_none=True)
            logits = net(x[idx])
            loss = torch.nn.functional.cross_entropy(logits, y[idx])
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(idx)
            correct += float((logits.argmax(1) == y[idx]).sum())
        return total / len(x), correct / len(x)

    def evaluate():
        net.eval()
        with torch.inference_mode():
            hits = sum(
                int((net(x_test[i : i + 500]).argmax(1) == y_test[i : i + 500]).sum())
                for i in range(0, len(x_test), 500)
            )
        return hits / len(x_test)

    return train_epoch, evaluate


def worker(framework, args, conn):
    """A worker process: build the trainer, then answer 'train' and 'eval' requests."""
    data = load_data(args.data, args.limit)
    make = slidenet_trainer if framework == "slidenet" else torch_trainer
    train_epoch, evaluate = make(args, data)
    conn.send("ready")
    while True:
        request = conn.recv()
        if request[0] == "stop":
            return
        wall, cpu = time.perf_counter(), time.process_time()
        if request[0] == "train":
            result = train_epoch(*request[1:])
        else:
            result = evaluate()
        conn.send((result, time.perf_counter() - wall, time.process_time() - cpu))


def run(args):
    """Train both in lockstep; returns {framework: list of per-epoch dicts} (epoch 0: untrained)."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)  # inherited by the spawned workers
    ctx = mp.get_context("spawn")
    names = ("slidenet", "torch")
    pipes, procs = {}, []
    for name in names:
        ours, theirs = ctx.Pipe()
        proc = ctx.Process(target=worker, args=(name, args, theirs), daemon=True)
        proc.start()
        pipes[name], procs = ours, [*procs, proc]
    for name in names:
        if pipes[name].recv() != "ready":
            raise RuntimeError(f"the {name} worker did not start")

    def ask(name, *request):
        pipes[name].send(request)
        return pipes[name].recv()

    curves = {name: [] for name in names}
    for name in names:
        acc, _, _ = ask(name, "eval")
        curves[name].append({"epoch": 0, "wall": 0.0, "cpu": 0.0, "test_acc": acc})
    for epoch in range(args.epochs):
        lr = args.lr * args.decay**epoch
        for name in names if epoch % 2 == 0 else names[::-1]:  # alternate who goes first
            (loss, train_acc), wall, cpu = ask(name, "train", epoch, lr)
            test_acc, eval_wall, _ = ask(name, "eval")
            last = curves[name][-1]
            curves[name].append(
                {
                    "epoch": epoch + 1,
                    "epoch_wall": wall,
                    "epoch_cpu": cpu,
                    "wall": last["wall"] + wall,
                    "cpu": last["cpu"] + cpu,
                    "loss": loss,
                    "train_acc": train_acc,
                    "test_acc": test_acc,
                    "eval_wall": eval_wall,
                }
            )
            row = curves[name][-1]
            print(
                f"epoch {epoch + 1} {name:8s}: lr {lr:.3g} loss {loss:.4f} train acc "
                f"{train_acc:.4f} | test acc {test_acc:.4f} | epoch {wall:.1f} s wall, "
                f"{cpu:.1f} s CPU | total {row['wall']:.0f} s wall, {row['cpu']:.0f} s CPU",
                flush=True,
            )
    for name in names:
        pipes[name].send(("stop",))
    for proc in procs:
        proc.join(timeout=30)
    return curves


def time_to(curve, target):
    """(epoch, cumulative wall s, cumulative CPU s) of the first epoch at >= target, or None."""
    for row in curve[1:]:
        if row["test_acc"] >= target:
            return row["epoch"], row["wall"], row["cpu"]
    return None


def plot(curves, targets, path):
    """Test accuracy against training wall time (left) and against epochs (right)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for name, style in (("slidenet", "o-"), ("torch", "s--")):
        rows = curves[name][1:]
        acc = [100 * r["test_acc"] for r in rows]
        axes[0].plot([r["wall"] / 60 for r in rows], acc, style, label=name)
        axes[1].plot([r["epoch"] for r in rows], acc, style, label=name)
    for ax in axes:
        for target in targets:
            ax.axhline(100 * target, color="gray", lw=0.8, ls=":")
        ax.set_ylabel("test accuracy (%)")
        ax.legend()
    axes[0].set_xlabel("training wall time (min, lockstep on the same machine)")
    axes[1].set_xlabel("epochs")
    fig.suptitle("mnist_cnn on Fashion-MNIST: slidenet vs PyTorch, one recipe")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def make_parser():
    """The options of this script (--help)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=6, help="epochs (6)")
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (1e-3)")
    parser.add_argument("--decay", type=float, default=0.6, help="lr factor per epoch (0.6)")
    parser.add_argument("--batch-size", type=int, default=100, help="batch size (100)")
    parser.add_argument("--threads", type=int, default=1, help="threads of each framework (1)")
    parser.add_argument("--seed", type=int, default=0, help="seed (0)")
    parser.add_argument("--limit", type=int, default=None, help="first N train and test images")
    parser.add_argument("--data", default=None, help="Fashion-MNIST .npz or IDX folder")
    parser.add_argument(
        "--targets", type=float, nargs="+", default=[0.90, 0.916], help="(0.90 0.916)"
    )
    parser.add_argument(
        "--tolerance", type=float, default=0.01, help="largest test accuracy gap per epoch"
    )
    parser.add_argument("--plot", default="docs/images/time_to_accuracy.png", help="figure")
    parser.add_argument("--no-check", action="store_true", help="exit 0 whatever the result")
    return parser


def summary(curves, args):
    """Print the time-to-accuracy lines; returns the list of failed checks."""
    failures = []
    for target in args.targets:
        found = {name: time_to(curves[name], target) for name in curves}
        parts = []
        for name, hit in found.items():
            if hit is None:
                parts.append(f"{name} not reached in {args.epochs} epochs")
            else:
                parts.append(f"{name} epoch {hit[0]}, {hit[1]:.0f} s wall ({hit[2]:.0f} s CPU)")
        ratio = ""
        if found["slidenet"] and found["torch"]:
            ratio = (
                f"; torch / slidenet wall time {found['torch'][1] / found['slidenet'][1]:.2f}, "
                f"CPU time {found['torch'][2] / found['slidenet'][2]:.2f}"
            )
        print(f"time to {100 * target:g} % test accuracy: " + "; ".join(parts) + ratio)
    if time_to(curves["slidenet"], args.targets[-1]) is None:
        failures.append(f"slidenet did not reach {100 * args.targets[-1]:g} %")
    gaps = [
        abs(a["test_acc"] - b["test_acc"])
        for a, b in zip(curves["slidenet"], curves["torch"], strict=True)
    ]
    print(
        f"largest test accuracy gap between the curves: {100 * max(gaps[1:]):.2f} points "
        f"(before training: {100 * gaps[0]:.2f}); tolerance {100 * args.tolerance:g}"
    )
    if gaps[0] > 1e-3:
        failures.append("the untrained nets differ: the weights were not copied")
    if max(gaps) > args.tolerance:
        failures.append(f"the curves differ by more than {100 * args.tolerance:g} points")
    return failures


def main(argv=None) -> int:
    args = make_parser().parse_args(argv)
    start, cpu = time.perf_counter(), time.process_time()
    print(
        f"mnist_cnn, Fashion-MNIST{f' (first {args.limit})' if args.limit else ''}, "
        f"{args.epochs} epochs, {args.threads} thread(s) each, {os.cpu_count()} CPUs, "
        f"{platform.machine()}, load average {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    curves = run(args)
    failures = summary(curves, args)
    if args.plot:
        plot(curves, args.targets, args.plot)
        print(f"wrote {args.plot}")
    wall = time.perf_counter() - start
    print(f"wall {wall:.0f} s (coordinator CPU {time.process_time() - cpu:.0f} s)")
    if args.no_check:
        return 0
    for failure in failures:
        print(f"FAILED: {failure}", file=sys.stderr)
    if not failures:
        print("OK: the curves agree and slidenet reached every target it claims.")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
