"""LeNet-5 (slidenet.applications.lenet5) on the MNIST digits bundled with slidenet.

Trains on the 4,000 training digits of slidenet.datasets.mnist_sample and checks the accuracy on
its 1,000 held-out test digits. LeNet-5 (61,706 parameters on 32x32; a 'same' first convolution
on 28x28) with ReLU and max pooling, Adam with a learning rate decayed per epoch. Always
available offline: the digits ship with slidenet.

    python examples/mnist_sample_lenet5.py                        # the full run (README table)
    python examples/mnist_sample_lenet5.py --limit 300 --epochs 1 --no-check   # smoke run
"""

from __future__ import annotations

import sys

from example_utils import make_parser, run_on_mnist_sample

CLAIM = 0.97


def main(argv=None) -> int:
    parser = make_parser(
        __doc__.splitlines()[0],
        epochs=15,
        batch_size=32,
        lr=2e-3,
        decay=0.85,
        min_accuracy=CLAIM,
    )
    return run_on_mnist_sample("lenet5", parser, argv)


if __name__ == "__main__":
    sys.exit(main())
