"""Shared plumbing of the example scripts: options, data, the training loop and the final check.

Every example trains with the same recipe (Adam, learning rate decayed by a constant factor per
epoch, inputs scaled to [0, 1]), prints one line per epoch, the test accuracy and the wall time,
and exits with status 1 when the test accuracy is below the number the script claims
(``--min-accuracy``; ``--no-check`` turns the check off for quick runs with ``--limit``).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from dataclasses import dataclass

import numpy as np


def make_parser(description, *, epochs, batch_size, lr, decay, min_accuracy):
    """An argument parser with the options every example shares.

    Args:
        description: what the script trains (shown by --help).
        epochs, batch_size, lr, decay: the defaults of the full run (the one in the README).
        min_accuracy: the test accuracy the full run claims; below it the script exits with 1.
    """
    parser = argparse.ArgumentParser(
        description=description,
        epilog=(
            "The defaults are the run reported in README.md and examples/RESULTS.md. "
            "For a quick smoke run: --limit 500 --epochs 1 --no-check."
        ),
    )
    parser.add_argument("--epochs", type=int, default=epochs, help=f"epochs (default {epochs})")
    parser.add_argument(
        "--batch-size", type=int, default=batch_size, help=f"batch size (default {batch_size})"
    )
    parser.add_argument("--lr", type=float, default=lr, help=f"Adam learning rate (default {lr})")
    parser.add_argument(
        "--decay",
        type=float,
        default=decay,
        help=f"learning rate multiplied by this after every epoch (default {decay})",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--limit",
        type=int,
        default=None,
        help="use only the first N training and N test examples (quick runs)",
    )
    parser.add_argument(
        "--min-accuracy",
        type=float,
        default=min_accuracy,
        help=f"exit with 1 when the test accuracy is below this (default {min_accuracy})",
    )
    parser.add_argument(
        "--no-check", action="store_true", help="do not check the test accuracy (quick runs)"
    )
    parser.add_argument(
        "--eval-each-epoch",
        action="store_true",
        help="also print the test accuracy after every epoch (for the record; costs time)",
    )
    parser.add_argument(
        "--verbose", type=int, default=0, choices=(0, 1, 2), help="fit's progress output (0)"
    )
    return parser


def add_recipe_options(parser):
    """Add the longer-run recipe: cosine schedule, warm-up, label smoothing, shifts, validation."""
    parser.add_argument(
        "--schedule",
        choices=("exponential", "cosine"),
        default="exponential",
        help="exponential: lr * decay**epoch (default); cosine: optimizers.schedules.CosineDecay "
        "per step to 0 over the run, after --warmup epochs of linear warm-up",
    )
    parser.add_argument(
        "--warmup", type=float, default=0.0, help="warm-up epochs of the cosine schedule (0)"
    )
    parser.add_argument(
        "--label-smoothing",
        type=float,
        default=0.0,
        help="train with CategoricalCrossentropy(label_smoothing=S) on one-hot labels (0)",
    )
    parser.add_argument(
        "--shift", type=int, default=0, help="with --augment: random shifts of up to N pixels (0)"
    )
    parser.add_argument(
        "--save",
        default=None,
        help="save the trained model there (for `slidenet report`; compiled with integer labels)",
    )
    parser.add_argument(
        "--validation",
        type=int,
        default=0,
        help="hold out the last N training images as a validation split, printed after every "
        "epoch (the recipe is chosen on it; the test set is evaluated once, at the end); "
        "with --limit, at most a fifth of the training images",
    )


def add_data_option(parser):
    """Add ``--data PATH``: where Fashion-MNIST is (see slidenet.datasets.fashion_mnist)."""
    parser.add_argument(
        "--data",
        default=None,
        help=(
            "Fashion-MNIST as a Keras-format .npz or a folder of the four IDX files; default: "
            "the places slidenet.datasets.fashion_mnist.load_data() searches "
            "(apt-get install dataset-fashion-mnist puts it in /usr/share/datasets/fashion-mnist)"
        ),
    )


def load_fashion_mnist(args):
    """Fashion-MNIST as float32 (N, 28, 28, 1) images in [0, 1] and labels, cut by ``--limit``."""
    from slidenet.datasets import fashion_mnist

    (x_train, y_train), (x_test, y_test) = limit(fashion_mnist.load_data(args.data), args.limit)
    return (images_01(x_train), y_train), (images_01(x_test), y_test)


def limit(data, n):
    """Keep the first ``n`` training and ``n`` test examples of ``((x, y), (x, y))``."""
    (x_train, y_train), (x_test, y_test) = data
    if n is None:
        return data
    if n < 1:
        raise SystemExit(f"--limit must be at least 1, got {n}.")
    return (x_train[:n], y_train[:n]), (x_test[:n], y_test[:n])


def images_01(x):
    """uint8 images (N, H, W) -> float32 (N, H, W, 1) in [0, 1]."""
    return (np.asarray(x, dtype=np.float32) / np.float32(255.0))[..., None]


def flip_and_shift(max_shift=0):
    """Augmentation: a random horizontal flip of half the images, then a random shift.

    Returns ``augment(x, rng) -> x`` for images (N, H, W, C); the shift (at most ``max_shift``
    pixels along each axis, zeros filled in) is one per image.
    """

    def augment(x, rng):
        out = x.copy()
        flip = rng.random(len(x)) < 0.5
        out[flip] = out[flip, :, ::-1]
        if max_shift:
            n, h, w, _ = x.shape
            s = max_shift
            padded = np.pad(out, ((0, 0), (s, s), (s, s), (0, 0)))
            dy = rng.integers(0, 2 * s + 1, n)
            dx = rng.integers(0, 2 * s + 1, n)
            for oy in range(2 * s + 1):
                for ox in range(2 * s + 1):
                    sel = (dy == oy) & (dx == ox)
                    out[sel] = padded[sel, oy : oy + h, ox : ox + w]
        return out

    return augment


@dataclass
class Result:
    """What :func:`train_and_evaluate` measured."""

    accuracy: float
    loss: float
    train_seconds: float
    epochs: int
    n_train: int
    n_test: int
    cpu_seconds: float = float("nan")


def _optimizer_and_loss(args, loss, n_train):
    """Adam with the schedule of ``args`` and the loss (label smoothing); callbacks for fit."""
    from slidenet.callbacks import LearningRateScheduler
    from slidenet.losses import CategoricalCrossentropy
    from slidenet.optimizers import Adam
    from slidenet.optimizers.schedules import CosineDecay

    if getattr(args, "label_smoothing", 0.0):
        loss = CategoricalCrossentropy(label_smoothing=args.label_smoothing)
    if getattr(args, "schedule", "exponential") == "cosine":
        steps = -(-n_train // args.batch_size)
        warm = int(round(args.warmup * steps))
        total = max(1, args.epochs * steps - warm)
        if warm:
            lr = CosineDecay(args.lr / 10, total, warmup_target=args.lr, warmup_steps=warm)
        else:
            lr = CosineDecay(args.lr, total)
        return Adam(learning_rate=lr), loss, []
    schedule = LearningRateScheduler(lambda epoch: args.lr * args.decay**epoch)
    return Adam(learning_rate=args.lr), loss, [schedule]


def split_validation(data, n, limited=False):
    """``((x, y), (x, y))`` -> train without its last ``n`` examples, and those ``n``.

    With ``limited`` (a ``--limit`` run), ``n`` is cut to a fifth of the training examples.
    """
    (x_train, y_train), _ = data
    if limited:
        n = min(n, len(x_train) // 5)
    if not n:
        return data, None
    if not 0 < n < len(x_train):
        raise SystemExit(f"--validation must be between 1 and {len(x_train) - 1}, got {n}.")
    return ((x_train[:-n], y_train[:-n]), data[1]), (x_train[-n:], y_train[-n:])


def train_and_evaluate(model, data, args, *, loss="sparse_categorical_crossentropy", augment=None):
    """Compile ``model`` with Adam, train it ``args.epochs`` epochs and evaluate it on the test set.

    The learning rate is ``args.lr * args.decay**epoch``, or with ``args.schedule == "cosine"`` a
    per-step CosineDecay (see :func:`add_recipe_options`). With ``augment`` (a function
    ``(x, rng) -> x``) every epoch trains on a freshly augmented copy of the training images. One
    line per epoch reports the training loss and accuracy, the elapsed time and the test accuracy
    (for the record only: nothing is selected on it; the claim is the accuracy after the last
    epoch).
    """
    data, validation = split_validation(
        data, getattr(args, "validation", 0), args.limit is not None
    )
    (x_train, y_train), (x_test, y_test) = data
    optimizer, loss, callbacks = _optimizer_and_loss(args, loss, len(x_train))
    one_hot = not isinstance(loss, str)  # label smoothing needs one-hot targets

    def targets(y):
        return np.eye(10, dtype=np.float32)[y] if one_hot else y

    y_fit = targets(y_train)
    model.compile(optimizer=optimizer, loss=loss, metrics=["accuracy"])
    rng = np.random.default_rng([args.seed, 1])
    start, cpu_start = time.perf_counter(), time.process_time()
    for epoch in range(args.epochs):
        epoch_start, epoch_cpu = time.perf_counter(), time.process_time()
        x_epoch = augment(x_train, rng) if augment is not None else x_train
        history = model.fit(
            x_epoch,
            y_fit,
            batch_size=args.batch_size,
            epochs=epoch + 1,
            initial_epoch=epoch,
            verbose=args.verbose,
            callbacks=callbacks,
        )
        logs = {k: v[-1] for k, v in history.history.items()}
        elapsed = time.perf_counter() - start
        lr = logs.get("learning_rate", float("nan"))
        line = (
            f"epoch {epoch + 1}/{args.epochs}: lr {lr:.3g} "
            f"loss {logs['loss']:.4f} acc {logs['accuracy']:.4f} | {elapsed:.0f} s "
            f"(epoch {time.perf_counter() - epoch_start:.0f} s wall, "
            f"{time.process_time() - epoch_cpu:.0f} s CPU)"
        )
        if validation is not None:
            x_val, y_val = validation
            val_acc = model.evaluate(x_val, targets(y_val), batch_size=500, verbose=0)[1]
            line += f" | val acc {val_acc:.4f}"
        if args.eval_each_epoch:
            test_acc = model.evaluate(x_test, targets(y_test), batch_size=500, verbose=0)[1]
            line += f" | test acc {test_acc:.4f}"
        print(line, flush=True)
    train_seconds = time.perf_counter() - start
    cpu_seconds = time.process_time() - cpu_start
    test_loss, test_acc = model.evaluate(x_test, targets(y_test), batch_size=500, verbose=0)
    if getattr(args, "save", None):
        if one_hot:  # the saved model takes integer labels, as `slidenet report` gives them
            model.compile(model.optimizer, "sparse_categorical_crossentropy", ["accuracy"])
        model.save(args.save)
        print(f"saved the model to {args.save}")
    return Result(
        float(test_acc),
        float(test_loss),
        train_seconds,
        args.epochs,
        len(x_train),
        len(x_test),
        cpu_seconds,
    )


def report(name, data_name, result, args, total_start):
    """Print the result line and exit with 1 when the accuracy is below ``args.min_accuracy``."""
    wall = time.perf_counter() - total_start
    command = "python " + " ".join([os.path.relpath(sys.argv[0]), *sys.argv[1:]])
    print(
        f"\n{name} on {data_name}: test accuracy {100 * result.accuracy:.2f}% "
        f"({result.n_test:,} test, {result.n_train:,} training examples), "
        f"{result.epochs} epochs, training {result.train_seconds:.0f} s "
        f"({result.cpu_seconds:.0f} s CPU), wall {wall:.0f} s, CPU {time.process_time():.0f} s "
        f"({os.cpu_count()} CPUs, {platform.machine()}, seed {args.seed})"
    )
    wall_text = f"{wall:.0f} s" if wall < 120 else f"{wall / 60:.1f} min"
    print(
        f"RESULT | {name} | {data_name} | {100 * result.accuracy:.2f}% | {result.epochs} | "
        f"{wall_text} | `{command}` |",
        flush=True,
    )
    if args.no_check:
        return 0
    if result.accuracy < args.min_accuracy:
        print(
            f"FAILED: test accuracy {result.accuracy:.4f} is below the claimed "
            f"{args.min_accuracy:.4f}.",
            file=sys.stderr,
        )
        return 1
    print(f"OK: test accuracy {result.accuracy:.4f} >= {args.min_accuracy:.4f}.")
    return 0


def run_on_mnist_sample(builder_name, parser, argv, title=None):
    """Train ``slidenet.applications.<builder_name>`` on the bundled MNIST sample with the options
    of ``parser``, check and report the test accuracy (as ``title``); returns the exit status."""
    args = parser.parse_args(argv)
    total_start = time.perf_counter()

    from slidenet import applications
    from slidenet.datasets import mnist_sample
    from slidenet.utils import set_random_seed

    (x_train, y_train), (x_test, y_test) = limit(mnist_sample.load_data(), args.limit)
    data = (images_01(x_train), y_train), (images_01(x_test), y_test)
    set_random_seed(args.seed)
    model = getattr(applications, builder_name)(input_shape=(28, 28, 1))
    result = train_and_evaluate(model, data, args)
    title = title or builder_name
    return report(title, "MNIST sample (bundled)", result, args, total_start)
