"""resnet_small (slidenet.applications) on full Fashion-MNIST, as far as CPU time allows.

A CIFAR-style ResNet for 28x28 images: a 3x3 stem, three stages of two residual blocks each
(16, 32, 64 filters; the first block of the second and third stage has strides 2 and a 1x1
projection shortcut), global average pooling and Dense(10): 13 convolutions, 176,090
parameters. Trained with Adam on random horizontal flips of the 60,000 training images; the
learning rate falls geometrically from --lr to --lr * --final-lr-fraction over the run (so a
shorter run still ends on a small step), and the 10,000 test images give the accuracy.

    python examples/fashion_mnist_resnet.py                      # the run in the README table
    python examples/fashion_mnist_resnet.py --limit 500 --epochs 1 --no-check   # smoke run

Measured on the shared 2-core machine: 3 epochs (the default) reach 91.33 % test accuracy in
18 min (798 CPU-s with one thread; 84.40 % and 89.05 % after the first two). That is what the
session's time allowed; the aim of 94 % needs more epochs (e.g. ``--epochs 15``: about 70 min
of one quiet core, estimated from the CPU time per epoch), which have not been run. The check
(--min-accuracy) is for the default 3 epochs.
"""

from __future__ import annotations

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

CLAIM = 0.91


def main(argv=None) -> int:
    parser = make_parser(
        __doc__.splitlines()[0],
        epochs=3,
        batch_size=100,
        lr=2e-3,
        decay=None,
        min_accuracy=CLAIM,
    )
    parser.add_argument(
        "--final-lr-fraction",
        type=float,
        default=0.1,
        help="without --decay: the last epoch's learning rate as a fraction of --lr (0.1)",
    )
    parser.add_argument(
        "--no-augment", action="store_true", help="train without random horizontal flips"
    )
    add_recipe_options(parser)
    add_data_option(parser)
    args = parser.parse_args(argv)
    if args.decay is None:
        args.decay = args.final_lr_fraction ** (1.0 / max(1, args.epochs - 1))
    total_start = time.perf_counter()

    from slidenet import applications
    from slidenet.utils import set_random_seed

    data = load_fashion_mnist(args)
    set_random_seed(args.seed)
    model = applications.resnet_small()
    augment = None if args.no_augment else flip_and_shift(args.shift)
    result = train_and_evaluate(model, data, args, augment=augment)
    return report("resnet_small", "Fashion-MNIST", result, args, total_start)


if __name__ == "__main__":
    sys.exit(main())
