"""Two convolutions with batch normalisation on full Fashion-MNIST (target 93.4 %; 91.39 % reached).

The Fashion-MNIST benchmark table (github.com/zalandoresearch/fashion-mnist, "Benchmark") lists
0.934 for "2 Conv+pooling+BN" (no preprocessing). This net is of that kind, built from plain
slidenet layers:

    [Conv2D(64, 3, same, no bias) -> BatchNormalization -> ReLU -> MaxPooling2D(2)]
    [Conv2D(128, 3, same, no bias) -> BatchNormalization -> ReLU -> MaxPooling2D(2)]
    Flatten -> Dense(256, relu) -> Dropout(0.3) -> Dense(10, softmax)

trained on the 60,000 training images with Adam (learning rate 1e-3 times 0.6 per epoch, batches
of 100, 6 epochs, no augmentation; ``--augment`` adds random horizontal flips) and checked on the
10,000 test images. Data: ``apt-get install dataset-fashion-mnist`` (see
slidenet.datasets.fashion_mnist).

    python examples/fashion_mnist_bn.py                        # the full run (README table)
    python examples/fashion_mnist_bn.py --limit 500 --epochs 1 --no-check   # smoke run

Measured on the shared 2-core machine: the defaults reach 91.39 % test accuracy in 6 epochs
(17 min; 87.61, 89.14, 90.29, 90.83, 91.21 % after epochs 1-5), short of the benchmark's 0.934
(TARGET). A first try (32 and 64 filters, Dropout(0.5), flips, 10 epochs, learning rate 2e-3
times 0.75 per epoch) reached 91.45 %. A longer run, ``--epochs 15 --decay 0.8 --augment``,
reached 92.86 % (37 min on one core), still short of the target. The check (CLAIM) is what the
default run reached, not the target.
"""

from __future__ import annotations

import sys
import time

from example_utils import (
    add_data_option,
    flip_and_shift,
    load_fashion_mnist,
    make_parser,
    report,
    train_and_evaluate,
)

#: The benchmark table's number for "2 Conv+pooling+BN" (not reached yet, see above).
TARGET = 0.934
#: What the default run reached (91.39 %); the script exits with 1 below it.
CLAIM = 0.91


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
        epochs=6,
        batch_size=100,
        lr=1e-3,
        decay=0.6,
        min_accuracy=CLAIM,
    )
    parser.add_argument(
        "--augment", action="store_true", help="train on random horizontal flips of the images"
    )
    parser.add_argument(
        "--filters", type=int, nargs=2, default=(64, 128), help="filters of the two convolutions"
    )
    parser.add_argument("--dense", type=int, default=256, help="units of the hidden Dense layer")
    parser.add_argument("--dropout", type=float, default=0.3, help="dropout before the output")
    add_data_option(parser)
    args = parser.parse_args(argv)
    total_start = time.perf_counter()

    from slidenet.utils import set_random_seed

    data = load_fashion_mnist(args)
    set_random_seed(args.seed)
    model = conv_bn_net(filters=tuple(args.filters), dense=args.dense, dropout=args.dropout)
    augment = flip_and_shift() if args.augment else None
    result = train_and_evaluate(model, data, args, augment=augment)
    return report("2 conv + batch norm", "Fashion-MNIST", result, args, total_start)


if __name__ == "__main__":
    sys.exit(main())
