"""Data-parallel scaling of the lecture CNN (mnist_cnn, 3,274,634 parameters) over MPI.

Measures, on this machine:

1. training throughput (global images/s) of
   - 1 process with 1 BLAS thread,
   - 2 MPI processes with 1 BLAS thread each (``mpiexec -n 2``), same global batch (strong
     scaling) and same batch per process (weak scaling),
   - 1 process with 2 BLAS threads (the alternative use of the same 2 cores);
2. the time spent in the gradient Allreduce during those 2-process steps, and the Allreduce of
   one 3,274,634-float32 buffer (13.1 MB) on its own, repeated; plus small buffers, to fit the
   latency ``a`` and bandwidth ``B`` of ``t(S) = a + S / B``;
3. the projected efficiency on N machines with the ring-allreduce model
   ``t_comm(N) = 2 (N - 1) a + 2 (N - 1) / N * S / B`` and ``efficiency = t_step / (t_step +
   t_comm)`` (slidenet does not overlap communication with the backward pass), for the measured
   intra-node bandwidth and for an assumed 10 GbE link.

Every configuration runs in its own processes, in alternating rounds; figures are medians over
rounds. Run it with ``nice -n 10`` on a shared machine.

Usage:
    python benchmarks/distributed_scaling.py                    # batch 64, 3 rounds
    python benchmarks/distributed_scaling.py --batch 64 --steps 12 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

PARAMS = 3_274_634
TEN_GBE = 1.25e9 * 0.94  # bytes/s: 10 Gbit/s less Ethernet/IP/TCP framing (an assumption)
TEN_GBE_LATENCY = 25e-6  # s per message step (an assumption for TCP over 10 GbE)


# ----- inside the MPI processes -----------------------------------------------------------------
def worker_train(batch, steps, warmup):
    """Train mnist_cnn for warmup + steps steps of ``batch`` examples per process; print JSON."""
    import slidenet as keras
    from slidenet import distributed as dist
    from slidenet.distributed import comm

    dist.init()
    n, r = dist.size(), dist.rank()
    (x, y), _ = keras.datasets.mnist_sample.load_data()
    x = (x[..., None] / 255.0).astype("float32")
    need = (warmup + steps) * batch * n
    reps = -(-need // len(x))
    x, y = np.concatenate([x] * reps)[:need], np.concatenate([y] * reps)[:need]
    x, y = dist.shard(x, y)
    keras.utils.set_random_seed(0)
    model = keras.applications.mnist_cnn()
    model.compile(dist.DistributedOptimizer("adam"), "sparse_categorical_crossentropy")
    allreduce_s = []
    original = comm.allreduce_

    def timed(buffer, op="sum"):
        t0 = time.perf_counter()
        out = original(buffer, op)
        if buffer.size > 1000:
            allreduce_s.append(time.perf_counter() - t0)
        return out

    comm.allreduce_ = timed
    common = {"batch_size": batch, "shuffle": False, "verbose": 0}
    cbs = [dist.BroadcastInitialWeights()]
    model.fit(x[: warmup * batch], y[: warmup * batch], callbacks=cbs, **common)
    allreduce_s.clear()
    dist.barrier()
    t0, cpu0 = time.perf_counter(), time.process_time()
    model.fit(x[warmup * batch :], y[warmup * batch :], **common)
    dist.barrier()
    elapsed = time.perf_counter() - t0
    cpu = float(dist.allreduce(np.array([time.process_time() - cpu0]), average=False)[0])
    if r == 0:
        result = {
            "processes": n,
            "threads": os.environ.get("OPENBLAS_NUM_THREADS"),
            "batch_per_process": batch,
            "global_batch": batch * n,
            "steps": steps,
            "img_per_s": steps * batch * n / elapsed,
            "step_s": elapsed / steps,
            "img_per_cpu_s": steps * batch * n / cpu,
            "allreduce_per_step_s": sum(allreduce_s) / steps if allreduce_s else 0.0,
            "params": model.count_params(),
        }
        print("RESULT " + json.dumps(result), flush=True)


def worker_allreduce(reps):
    """Time Allreduce (sum, in place) of float32 buffers of several sizes; print JSON."""
    from slidenet import distributed as dist
    from slidenet.distributed import comm

    dist.init()
    out = {}
    for count in (1_024, 16_384, 262_144, PARAMS):
        buffer = np.ones(count, np.float32)
        times = []
        for _ in range(reps + 3):
            dist.barrier()
            t0 = time.perf_counter()
            comm.allreduce_(buffer)
            times.append(time.perf_counter() - t0)
        out[count] = {"median": statistics.median(times[3:]), "min": min(times[3:])}
    # what DistributedOptimizer adds around the Allreduce: copy the gradients in, divide
    import slidenet as keras

    grads = [np.ones_like(w) for w in keras.applications.mnist_cnn().weights]
    fused = np.empty(sum(g.size for g in grads), np.float32)
    times = []
    for _ in range(reps + 3):
        t0 = time.perf_counter()
        offset = 0
        for g in grads:
            fused[offset : offset + g.size].reshape(g.shape)[...] = g
            offset += g.size
        np.divide(fused, np.float32(2), out=fused)
        times.append(time.perf_counter() - t0)
    if dist.rank() == 0:
        result = {"allreduce": out, "fuse_s": statistics.median(times[3:])}
        print("RESULT " + json.dumps(result), flush=True)


# ----- the driver -------------------------------------------------------------------------------
def launch(args, processes, threads, timeout=600):
    python = [sys.executable, __file__, *args]
    if processes > 1:
        mpiexec = Path(sys.executable).parent / "mpiexec"
        python = [str(mpiexec if mpiexec.exists() else shutil.which("mpiexec")), "-n", "2", *python]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "OPENBLAS_NUM_THREADS": str(threads)}
    env["MKL_NUM_THREADS"] = str(threads)
    done = subprocess.run(
        python, capture_output=True, text=True, env=env, timeout=timeout, stdin=subprocess.DEVNULL
    )
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(python)} failed:\n{done.stderr}")
    line = next(x for x in done.stdout.splitlines() if x.startswith("RESULT "))
    return json.loads(line[len("RESULT ") :])


def latency_bandwidth(times: dict) -> tuple[float, float]:
    """a and B of t = a + bytes / B: a from the fastest 4 KB Allreduce (waiting for a process
    that another job holds off the CPU is not latency), B from the median of the largest."""
    sizes = sorted(int(k) for k in times)
    latency = times[str(sizes[0])]["min"]
    return latency, sizes[-1] * 4 / (times[str(sizes[-1])]["median"] - latency)


def ring_time(n, nbytes, latency, bandwidth):
    return 2 * (n - 1) * latency + 2 * (n - 1) / n * nbytes / bandwidth


def machine_line():
    try:
        from threadpoolctl import threadpool_info

        blas = ", ".join(
            f"{i['internal_api']} {i['version']}" for i in threadpool_info() if "version" in i
        )
    except ImportError:
        blas = "?"
    try:
        from mpi4py import MPI

        mpi = " ".join(MPI.Get_library_version().splitlines()[0].replace("Version:", "").split())
    except ImportError:
        mpi = "no mpi4py"
    return (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, numpy "
        f"{np.__version__} ({blas}), {mpi}, Python {platform.python_version()}"
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64, help="global batch (default 64)")
    parser.add_argument("--steps", type=int, default=12, help="timed steps per run")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (median)")
    parser.add_argument("--reps", type=int, default=20, help="Allreduce repetitions")
    parser.add_argument("--worker", choices=("train", "allreduce"), help=argparse.SUPPRESS)
    parser.add_argument("--per-process", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker == "train":
        return worker_train(args.per_process, args.steps, args.warmup)
    if args.worker == "allreduce":
        return worker_allreduce(args.reps)

    b, common = args.batch, ["--steps", str(args.steps), "--warmup", str(args.warmup)]
    configs = {
        "1 process, 1 thread": (1, 1, b),
        "2 processes x 1 thread, same global batch": (2, 1, b // 2),
        "2 processes x 1 thread, same batch per process": (2, 1, b),
        "1 process, 2 threads": (1, 2, b),
    }
    runs = {name: [] for name in configs}
    t_start = time.time()
    for round_ in range(args.rounds):
        order = list(configs)[round_ % len(configs) :] + list(configs)[: round_ % len(configs)]
        for name in order:
            procs, threads, per = configs[name]
            argv_ = ["--worker", "train", "--per-process", str(per), *common]
            runs[name].append(launch(argv_, procs, threads))
            last = runs[name][-1]
            print(
                f"round {round_ + 1} {name}: {last['img_per_s']:.0f} img/s, "
                f"{last['img_per_cpu_s']:.0f} img/CPU-s, load {os.getloadavg()[0]:.1f}",
                flush=True,
            )
    micro = [launch(["--worker", "allreduce", "--reps", str(args.reps)], 2, 1) for _ in range(2)]
    allreduce = [m["allreduce"] for m in micro]
    fuse_s = statistics.median(m["fuse_s"] for m in micro)
    minutes = (time.time() - t_start) / 60
    load = os.getloadavg()

    med = {
        name: {
            k: statistics.median(r[k] for r in rs)
            for k in ("img_per_s", "step_s", "img_per_cpu_s", "allreduce_per_step_s")
        }
        for name, rs in runs.items()
    }
    times = {
        k: {
            "median": statistics.median(a[k]["median"] for a in allreduce),
            "min": min(a[k]["min"] for a in allreduce),
        }
        for k in allreduce[0]
    }
    nbytes = PARAMS * 4
    t_big = times[str(PARAMS)]["median"]
    latency, bandwidth = latency_bandwidth(times)
    base = med["1 process, 1 thread"]["img_per_s"]

    lines = [
        "## Data-parallel scaling over MPI (slidenet.distributed)",
        "",
        f"Machine: {machine_line()}. Shared with other jobs while measured (load average "
        f"{load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} at the end); the run took {minutes:.1f} "
        "min under `nice -n 10`. img per CPU-second (CPU time of all processes, MPI's busy "
        "waiting included) depends less on the other jobs than img/s.",
        "",
        f"Command: `nice -n 10 python benchmarks/distributed_scaling.py --batch {b} --steps "
        f"{args.steps} --rounds {args.rounds}` (mnist_cnn, {PARAMS:,} parameters, Adam, float32; "
        f"medians over {args.rounds} alternating rounds of {args.steps} timed steps)",
        "",
        "| configuration | global batch | img/s | speed-up vs 1 process, 1 thread | step (ms) "
        "| Allreduce in step, incl. waiting for the other process (ms) | img per CPU-second |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, (procs, _, per) in configs.items():
        m = med[name]
        ar = f"{m['allreduce_per_step_s'] * 1e3:.1f}" if procs > 1 else "-"
        lines.append(
            f"| {name} | {per * procs} | {m['img_per_s']:.0f} | {m['img_per_s'] / base:.2f}x | "
            f"{m['step_s'] * 1e3:.0f} | {ar} | {m['img_per_cpu_s']:.0f} |"
        )
    lines += [
        "",
        "Allreduce (sum, in place) of float32 buffers between the 2 processes, alone ("
        f"{args.reps} repetitions after 3 warm-ups, two runs):",
        "",
        "| floats | bytes | median (ms) | fastest (ms) | bandwidth, median (GB/s) |",
        "|---|---|---|---|---|",
    ]
    for count, t in times.items():
        size = int(count)
        lines.append(
            f"| {size:,} | {size * 4:,} | {t['median'] * 1e3:.3f} | {t['min'] * 1e3:.3f} | "
            f"{size * 4 / t['median'] / 1e9:.2f} |"
        )
    step1 = med["1 process, 1 thread"]["step_s"] * (b // 2) / b  # compute of b/2 examples
    step1_weak = med["1 process, 1 thread"]["step_s"]
    lines += [
        "",
        f"Model t(S) = a + S/B: a = {latency * 1e6:.0f} us (the fastest 4 KB Allreduce), B = "
        f"{bandwidth / 1e9:.2f} GB/s (shared memory inside one machine: a loopback figure, not "
        "a network's). One step's gradients, 13.1 MB, take "
        f"{t_big * 1e3:.1f} ms to Allreduce here; copying them into the fused buffer and "
        f"dividing by the number of processes adds {fuse_s * 1e3:.1f} ms.",
        "",
        "Projected efficiency on N machines (one process each), ring allreduce: t_comm(N) = "
        "2(N-1)a + 2(N-1)/N * S/B with S = 13.1 MB, efficiency = t_compute / (t_compute + "
        "t_comm), no overlap of communication and backward pass. t_compute is the measured "
        f"1-process, 1-thread step: {step1_weak * 1e3:.0f} ms for {b} examples per process "
        f"(weak scaling) and about {step1 * 1e3:.0f} ms for {b // 2}. The 10 GbE column assumes "
        f"B = {TEN_GBE / 1e9:.2f} GB/s and a = {TEN_GBE_LATENCY * 1e6:.0f} us; a real cluster "
        "node with more cores computes faster and so scales worse than this.",
        "",
        f"| N | t_comm, measured B (ms) | efficiency, batch {b}/process | t_comm, 10 GbE (ms) "
        f"| efficiency 10 GbE, batch {b}/process | efficiency 10 GbE, batch {b // 2}/process |",
        "|---|---|---|---|---|---|",
    ]
    for n in (2, 4, 8, 16, 64):
        here = ring_time(n, nbytes, latency, bandwidth)
        net = ring_time(n, nbytes, TEN_GBE_LATENCY, TEN_GBE)
        lines.append(
            f"| {n} | {here * 1e3:.1f} | {step1_weak / (step1_weak + here):.2f} | "
            f"{net * 1e3:.1f} | {step1_weak / (step1_weak + net):.2f} | "
            f"{step1 / (step1 + net):.2f} |"
        )
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
