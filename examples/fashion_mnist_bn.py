"""Two convolutions with batch normalisation on full Fashion-MNIST: 93.66 % (target 93.4 %).

The Fashion-MNIST benchmark table (github.com/zalandoresearch/fashion-mnist, "Benchmark") lists
0.934 for "2 Conv+pooling+BN" (no preprocessing). This net is of that kind, built from plain
slidenet layers:

    [Conv2D(64, 3, same, no bias) -> BatchNormalization -> ReLU -> MaxPooling2D(2)]
    [Conv2D(128, 3, same, no bias) -> BatchNormalization -> ReLU -> MaxPooling2D(2)]
    Flatten -> Dense(256, relu) -> Dropout(0.3) -> Dense(10, softmax)

The default recipe: the first 55,000 training images (the last 5,000 held out as a validation
split, printed after every epoch), 30 epochs of Adam with optimizers.schedules.CosineDecay per
step from 1e-3 to 0 after one epoch of linear warm-up from 1e-4, batches of 100, label
smoothing 0.1 (CategoricalCrossentropy), and every epoch a fresh copy of the images with random
horizontal flips and random shifts of up to 1 pixel; the 10,000 test images are evaluated once,
at the end. Data: ``apt-get install dataset-fashion-mnist`` (see slidenet.datasets.fashion_mnist).

    python examples/fashion_mnist_bn.py                        # the full run (README table)
    python examples/fashion_mnist_bn.py --limit 500 --epochs 1 --no-check   # smoke run

Measured on the shared 2-core machine (2026-12-06, one thread, ``nice -n 19``): 93.66 % test
accuracy (TARGET 93.4 % reached), validation accuracy 84.44 % after epoch 1, 92.84 % after 10,
93.76 % after 20, 94.16 % after 30; 43.5 min of CPU (about 80 s per epoch), 109 min wall with
other programs' load and about 30 min paused. Earlier recipes (6 to 15 epochs, learning rate
times 0.6-0.8 per epoch, flips at most, all 60,000 images) ended at 91.39-92.86 %.
"""

from __future__ import annotations

import argparse
import sys
import time

from example_utils import (
    add_data_option,
    add_recipe_options,
    flip_and_shift,
    load_fashion_mnist,
    make_parser,
    report,
    train_and_evaluate,
)

#: The benchmark table's number for "2 Conv+pooling+BN" (reached: 93.66 %, see above).
TARGET = 0.934
#: What the default run claims: the target; the script exits with 1 below it.
CLAIM = TARGET


def conv_bn_net(input_shape=(28, 28, 1), classes=10, filters=(64, 128), dense=256, dropout=0.3):
    """The 2-conv + batch-norm net of this example (see the module docstring)."""
    from slidenet.layers import (
        Activation,
        BatchNormalization,
        Conv2D,
        Dense,
        Dropout,
        Flatten,
        Input,
        MaxPooling2D,
    )
    from slidenet.models import Sequential

    layers = [Input(input_shape)]
    for f in filters:
        layers += [
            Conv2D(f, 3, padding="same", use_bias=False, kernel_initializer="he_normal"),
            BatchNormalization(),
            Activation("relu"),
            MaxPooling2D(2),
        ]
    layers += [
        Flatten(),
        Dense(dense, activation="relu", kernel_initializer="he_normal"),
        Dropout(dropout),
        Dense(classes, activation="softmax"),
    ]
    return Sequential(layers, name="conv_bn_net")


def main(argv=None) -> int:
    parser = make_parser(
        __doc__.splitlines()[0],
        epochs=30,
        batch_size=100,
        lr=1e-3,
        decay=0.6,
        min_accuracy=CLAIM,
    )
    parser.add_argument(
        "--augment",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="train on random horizontal flips (and --shift shifts) of the images (default on)",
    )
    parser.add_argument(
        "--filters", type=int, nargs=2, default=(64, 128), help="filters of the two convolutions"
    )
    parser.add_argument("--dense", type=int, default=256, help="units of the hidden Dense layer")
    parser.add_argument("--dropout", type=float, default=0.3, help="dropout before the output")
    add_recipe_options(parser)
    parser.set_defaults(schedule="cosine", warmup=1.0, shift=1, label_smoothing=0.1)
    parser.set_defaults(validation=5000)
    add_data_option(parser)
    args = parser.parse_args(argv)
    total_start = time.perf_counter()

    from slidenet.utils import set_random_seed

    data = load_fashion_mnist(args)
    set_random_seed(args.seed)
    model = conv_bn_net(filters=tuple(args.filters), dense=args.dense, dropout=args.dropout)
    augment = flip_and_shift(args.shift) if args.augment else None
    result = train_and_evaluate(model, data, args, augment=augment)
    return report("2 conv + batch norm", "Fashion-MNIST", result, args, total_start)


if __name__ == "__main__":
    sys.exit(main())
