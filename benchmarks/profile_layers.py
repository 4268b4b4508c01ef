"""Per-layer profile of slidenet training steps and inference: where the milliseconds go.

Wraps every layer's forward and backward (and the optimizer's update) with a timer, runs real
training steps of an application model, and prints the median milliseconds per step of each part.
Medians over ``--steps`` steps after warm-up; the machine should be otherwise idle. The step runs
on one thread (``SLIDENET_NUM_THREADS=1``): a step split over threads (models/sharded_step.py)
would run every layer in each thread at once, and the per-layer times would mix.

    .venv/bin/python benchmarks/profile_layers.py --model mnist_cnn --batch 100
    .venv/bin/python benchmarks/profile_layers.py --model lenet5 --inference
"""

from __future__ import annotations

import argparse
import os
import time
from collections import defaultdict

import numpy as np

import slidenet as keras

CLOCK = time.perf_counter


def _timed(record, key, fn):
    def wrapper(*args, **kwargs):
        t = CLOCK()
        out = fn(*args, **kwargs)
        record[key].append(CLOCK() - t)
        return out

    return wrapper


def profile(model_name="mnist_cnn", batch=100, steps=20, inference=False):
    """Returns (rows, total_ms): rows are (part, median ms per step) of the CLOCK."""
    os.environ["SLIDENET_NUM_THREADS"] = "1"  # one thread: the layers' times must not overlap
    keras.utils.set_random_seed(0)
    model = getattr(keras.applications, model_name)(input_shape=(28, 28, 1))
    model.compile("adam", "sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    x = rng.random((batch, 28, 28, 1), dtype=np.float32)
    y = rng.integers(0, 10, batch)
    record = defaultdict(list)
    for layer in model.layers:
        layer.forward = _timed(record, f"{layer.name} forward", layer.forward)
        layer.backward = _timed(record, f"{layer.name} backward", layer.backward)
    model.optimizer.apply = _timed(record, "optimizer", model.optimizer.apply)
    if inference:
        step = lambda: model.predict_on_batch(x)  # noqa: E731
    else:
        step = lambda: model.train_on_batch(x, y)  # noqa: E731
    for _ in range(3):
        step()
    record.clear()
    totals = []
    for _ in range(steps):
        t = CLOCK()
        step()
        totals.append(CLOCK() - t)
    rows = [(part, 1e3 * float(np.median(times))) for part, times in record.items()]
    return rows, 1e3 * float(np.median(totals))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="mnist_cnn", choices=["mnist_cnn", "lenet5"])
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--inference", action="store_true", help="profile predict_on_batch")
    parser.add_argument(
        "--cpu-time",
        action="store_true",
        help="time with the process's CPU time (all threads) instead of the wall clock: steadier "
        "on a busy machine; use with OPENBLAS_NUM_THREADS=1",
    )
    args = parser.parse_args(argv)
    global CLOCK
    CLOCK = time.process_time if args.cpu_time else time.perf_counter
    rows, total = profile(args.model, args.batch, args.steps, args.inference)
    clock = "CPU time" if args.cpu_time else "wall clock"
    print(
        f"{args.model}, batch {args.batch}, "
        f"{'inference' if args.inference else 'training'}, {clock}"
    )
    print("| part | ms per step |\n|---|---|")
    for part, ms in rows:
        print(f"| {part} | {ms:.2f} |")
    accounted = sum(ms for _, ms in rows)
    print(f"| other (loss, glue) | {total - accounted:.2f} |\n| **step** | **{total:.2f}** |")


if __name__ == "__main__":
    main()
