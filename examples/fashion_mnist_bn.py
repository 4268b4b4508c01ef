"""Two convolutions with batch normalisation on full Fashion-MNIST: >= 93.4 % test accuracy.

The Fashion-MNIST benchmark table (github.com/zalandoresearch/fashion-mnist, "Benchmark") lists
0.934 for "2 Conv+pooling+BN" (no preprocessing). This net is of that kind, built from plain
slidenet layers:

    [Conv2D(32, 3, same, no bias) -> BatchNormalization -> ReLU -> MaxPooling2D(2)]
    [Conv2D(64, 3, same, no bias) -> BatchNormalization -> ReLU -> MaxPooling2D(2)]
    Flatten -> Dense(256, relu) -> Dropout(0.5) -> Dense(10, softmax)

trained with Adam (learning rate decayed per epoch) on random horizontal flips of the 60,000
training images, and checked on the 10,000 test images. Data: ``apt-get install
dataset-fashion-mnist`` (see slidenet.datasets.fashion_mnist).

    python examples/fashion_mnist_bn.py                        # the full run (README table)
    python examples/fashion_mnist_bn.py --limit 500 --epochs 1 --no-check   # smoke run
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

CLAIM = 0.934


def conv_bn_net(input_shape=(28, 28, 1), classes=10, filters=(32, 64), dense=256, dropout=0.5):
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
        epochs=10,
        batch_size=100,
        lr=2e-3,
        decay=0.75,
        min_accuracy=CLAIM,
    )
    parser.add_argument(
        "--no-augment", action="store_true", help="train without random horizontal flips"
    )
    add_data_option(parser)
    args = parser.parse_args(argv)
    total_start = time.perf_counter()

    from slidenet.utils import set_random_seed

    data = load_fashion_mnist(args)
    set_random_seed(args.seed)
    model = conv_bn_net()
    augment = None if args.no_augment else flip_and_shift()
    result = train_and_evaluate(model, data, args, augment=augment)
    return report("2 conv + batch norm", "Fashion-MNIST", result, args, total_start)


if __name__ == "__main__":
    sys.exit(main())
