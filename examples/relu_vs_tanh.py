"""ReLU against tanh: AlexNet's Figure 1 reproduced on Fashion-MNIST.

Krizhevsky, Sutskever and Hinton (2012), Figure 1: "A four-layer convolutional neural network
with ReLUs (solid line) reaches a 25% training error rate on CIFAR-10 six times faster than an
equivalent network with tanh neurons (dashed line)." This script trains the same kind of net,

    [Conv2D(32, 5, same) -> act -> MaxPooling2D(2)]
    [Conv2D(32, 5, same) -> act -> MaxPooling2D(2)]
    [Conv2D(64, 5, same) -> act -> MaxPooling2D(2)] -> Flatten -> Dense(10, softmax)

(three convolutions and one fully connected layer; act = ReLU or tanh; for a seed, the same
initial weights and data order; SGD with momentum 0.9, no regularisation), on the first
``--train`` Fashion-MNIST training images, for several seeds. As in the paper, each net gets its
own learning rate, "chosen independently to make training as fast as possible": the one of
``--lrs`` with the lowest training error after ``--select-epochs`` epochs, on a seed used for
nothing else. The training error is the running error of the mini-batches, recorded ``--points``
times per epoch (as the paper's curve), and the script reports the epoch at which each run first
reaches ``--threshold`` (linearly interpolated between recorded points) and how many times
sooner ReLU gets there.

The threshold: 25 % is crossed by both nets within the first epoch on Fashion-MNIST (chance is
90 % error), so it would measure nothing. For the paper's CIFAR-10 net, 25 % is about the test
error such a net ends at, the level where its training curve levels off; on Fashion-MNIST a
net of this size ends at about 10 % test error, so the default threshold is 10 % training error.

    python examples/relu_vs_tanh.py                # the README figure (5 seeds, 10,000 images)
    python examples/relu_vs_tanh.py --train 500 --epochs 1 --seeds 0 --select-epochs 1 --no-check

It writes the plot (``--plot``, docs/images/relu_vs_tanh.png by default) and exits with 1 when
the median speed-up is outside ``--min-factor``-``--max-factor`` (around what the README run
measured).

Measured (the defaults, shared 2-core machine, 31 min wall, 15 CPU-min): both nets got 0.05 from
the choice; tanh reaches 10 % training error at epochs 4.2-5.1, ReLU at 5.7-10.4, so ReLU gets
there 0.59 times as fast (median of 5 seeds, 0.40-0.90): slower, not the paper's six times
faster. ReLU's error levels off near 9 % while tanh's falls to 3 %. The choice (seed 100, 6
epochs) gave ReLU 15.7, 15.1, 13.4 % and tanh 13.6, 12.2, 9.0 % training error at 0.01, 0.02,
0.05; both the fastest at 0.05, the largest rate tried, so a larger one might be faster still.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np
from example_utils import add_data_option, images_01

#: The range the median speed-up (epochs to the threshold, tanh / ReLU) of the default run is
#: checked against: it measured 0.59 (ReLU slower; per seed 0.40, 0.90, 0.45, 0.59, 0.62).
MIN_FACTOR, MAX_FACTOR = 0.5, 1.0
#: The paper's figure.
PAPER_FACTOR = 6.0


def four_layer_cnn(activation, input_shape=(28, 28, 1), classes=10):
    """Three 5x5 convolutions with pooling, then one softmax layer (the paper's four layers)."""
    from slidenet.layers import Conv2D, Dense, Flatten, Input, MaxPooling2D
    from slidenet.models import Sequential

    layers = [Input(input_shape)]
    for filters in (32, 32, 64):
        layers += [Conv2D(filters, 5, padding="same", activation=activation), MaxPooling2D(2)]
    layers += [Flatten(), Dense(classes, activation="softmax")]
    return Sequential(layers, name=f"four_layer_{activation}")


def train_curve(activation, x, y, args, seed, lr, epochs=None, quiet=False):
    """Train one net; returns (epochs, training errors, wall seconds, CPU seconds)."""
    epochs = args.epochs if epochs is None else epochs
    from slidenet.optimizers import SGD
    from slidenet.utils import set_random_seed

    set_random_seed(seed)
    model = four_layer_cnn(activation)
    model.compile(
        optimizer=SGD(learning_rate=lr, momentum=0.9),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    order_rng = np.random.default_rng([seed, 7])  # the same order for both activations
    n_batches = -(-len(x) // args.batch_size)
    edges = np.linspace(0, n_batches, args.points + 1).round().astype(int)[1:]
    xs, errors = [0.0], [0.9]  # before training: chance level of 10 classes
    wall, cpu = time.perf_counter(), time.process_time()
    for epoch in range(epochs):
        order = order_rng.permutation(len(x))
        wrong = seen = 0
        for b in range(n_batches):
            idx = order[b * args.batch_size : (b + 1) * args.batch_size]
            _, acc = model.train_on_batch(x[idx], y[idx])
            wrong += (1.0 - acc) * len(idx)
            seen += len(idx)
            if b + 1 in edges:
                xs.append(epoch + (b + 1) / n_batches)
                errors.append(wrong / seen)
                wrong = seen = 0
        if not quiet:
            print(
                f"  {activation:4s} seed {seed} epoch {epoch + 1}/{epochs}: "
                f"training error {errors[-1]:.4f}",
                flush=True,
            )
    return np.array(xs), np.array(errors), time.perf_counter() - wall, time.process_time() - cpu


def choose_learning_rates(x, y, args):
    """Each net's SGD learning rate, chosen independently as the paper did ("to make training as
    fast as possible"): the rate of ``--lrs`` with the lowest training error (mean of the last
    epoch's points) after ``--select-epochs`` epochs, on a seed of its own (``--select-seed``)."""
    chosen = {}
    for activation in ("relu", "tanh"):
        given = getattr(args, f"lr_{activation}")
        if given is not None:
            chosen[activation] = given
            continue
        scores = {}
        for lr in args.lrs:
            _, errors, wall, cpu = train_curve(
                activation, x, y, args, args.select_seed, lr, args.select_epochs, quiet=True
            )
            scores[lr] = float(np.mean(errors[-args.points :]))
            print(
                f"choosing {activation}'s rate: lr {lr:g} -> training error {scores[lr]:.4f} "
                f"after {args.select_epochs} epochs ({wall:.0f} s wall, {cpu:.0f} s CPU)",
                flush=True,
            )
        chosen[activation] = min(scores, key=scores.get)
    print(f"learning rates: ReLU {chosen['relu']:g}, tanh {chosen['tanh']:g}", flush=True)
    return chosen


def first_crossing(xs, errors, threshold):
    """The (interpolated) epoch at which ``errors`` first reaches ``threshold``; None if never."""
    below = np.nonzero(errors <= threshold)[0]
    if len(below) == 0:
        return None
    i = below[0]
    if i == 0:
        return float(xs[0])
    x0, x1, e0, e1 = xs[i - 1], xs[i], errors[i - 1], errors[i]
    return float(x0 + (x1 - x0) * (e0 - threshold) / (e0 - e1))


def plot(curves, threshold, path):
    """Training error against epochs, ReLU solid, tanh dashed (one thin line per seed, the
    mean over seeds bold), like the paper's Figure 1."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.2))
    for activation, style in (("relu", "-"), ("tanh", "--")):
        runs = curves[activation]
        for xs, errors in runs:
            ax.plot(xs, errors, style, color="C0" if activation == "relu" else "C3", lw=0.6)
        mean = np.mean([errors for _, errors in runs], axis=0)
        label = "ReLU" if activation == "relu" else "tanh"
        ax.plot(runs[0][0], mean, style, color="k", lw=2, label=f"{label} (mean of {len(runs)})")
    ax.axhline(threshold, color="gray", lw=0.8, ls=":")
    ax.text(0.02, threshold, f" {100 * threshold:g} %", va="bottom", color="gray")
    ax.set_xlabel("epochs")
    ax.set_ylabel("training error rate")
    ax.set_ylim(0, 0.5)
    ax.legend()
    ax.set_title("Four-layer CNN on Fashion-MNIST: ReLU (solid) vs tanh (dashed)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def make_parser():
    """The options of this script (--help)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=10000, help="training images (10000)")
    parser.add_argument("--epochs", type=int, default=12, help="epochs per run (12)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4], help="(0-4)")
    parser.add_argument(
        "--lrs", type=float, nargs="+", default=[0.01, 0.02, 0.05], help="rates to choose from"
    )
    parser.add_argument("--lr-relu", type=float, default=None, help="ReLU's rate (chosen)")
    parser.add_argument("--lr-tanh", type=float, default=None, help="tanh's rate (chosen)")
    parser.add_argument("--select-epochs", type=int, default=6, help="epochs per choice run (6)")
    parser.add_argument("--select-seed", type=int, default=100, help="seed of the choice (100)")
    parser.add_argument("--batch-size", type=int, default=100, help="batch size (100)")
    parser.add_argument("--points", type=int, default=4, help="error points per epoch (4)")
    parser.add_argument("--threshold", type=float, default=0.10, help="training error (0.10)")
    parser.add_argument(
        "--min-factor", type=float, default=MIN_FACTOR, help=f"checked speed-up ({MIN_FACTOR})"
    )
    parser.add_argument(
        "--max-factor", type=float, default=MAX_FACTOR, help=f"checked speed-up ({MAX_FACTOR})"
    )
    parser.add_argument("--plot", default="docs/images/relu_vs_tanh.png", help="figure path")
    parser.add_argument("--no-check", action="store_true", help="do not check the speed-up")
    add_data_option(parser)
    return parser


def main(argv=None) -> int:
    args = make_parser().parse_args(argv)
    start, cpu_start = time.perf_counter(), time.process_time()
    from slidenet.datasets import fashion_mnist

    (x, y), _ = fashion_mnist.load_data(args.data)  # the test set is not used
    x, y = images_01(x[: args.train]), np.asarray(y[: args.train])
    rates = choose_learning_rates(x, y, args)
    curves = {"relu": [], "tanh": []}
    factors, lines = [], []
    for seed in args.seeds:
        reached = {}
        for activation in ("relu", "tanh"):
            xs, errors, wall, cpu = train_curve(activation, x, y, args, seed, rates[activation])
            curves[activation].append((xs, errors))
            reached[activation] = first_crossing(xs, errors, args.threshold)
            at = reached[activation]
            where = f"epoch {at:.2f}" if at is not None else f"not within {args.epochs} epochs"
            lines.append(
                f"seed {seed} {activation}: final training error {errors[-1]:.4f}, "
                f"{100 * args.threshold:g} % reached at {where} "
                f"({wall:.0f} s wall, {cpu:.0f} s CPU)"
            )
            print(lines[-1], flush=True)
        if reached["relu"] is not None and reached["relu"] > 0:
            tanh_at = reached["tanh"] if reached["tanh"] is not None else float(args.epochs)
            factors.append((tanh_at / reached["relu"], reached["tanh"] is None))
    if args.plot:
        plot(curves, args.threshold, args.plot)
        print(f"wrote {args.plot}")
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    if not factors:
        print(f"ReLU did not reach {100 * args.threshold:g} % training error in any run.")
        return 0 if args.no_check else 1
    values = [f for f, _ in factors]
    median = statistics.median(values)
    text = ", ".join(f"{'>' if lower else ''}{f:.2f}" for f, lower in factors)
    print(
        f"\nReLU reaches {100 * args.threshold:g} % training error {median:.2f} times sooner "
        f"than tanh (median over {len(values)} seeds; per seed: {text}; range "
        f"{min(values):.2f}-{max(values):.2f}; '>' = tanh not there by the last epoch); "
        f"the paper: {PAPER_FACTOR:g} times at 25 % on CIFAR-10. "
        f"{len(x):,} training images, {args.epochs} epochs, wall {wall:.0f} s, CPU {cpu:.0f} s"
    )
    if args.no_check:
        return 0
    if not args.min_factor <= median <= args.max_factor:
        print(
            f"FAILED: speed-up {median:.2f} is outside the claimed "
            f"{args.min_factor:g}-{args.max_factor:g}.",
            file=sys.stderr,
        )
        return 1
    print(f"OK: speed-up {median:.2f} within the claimed {args.min_factor:g}-{args.max_factor:g}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
