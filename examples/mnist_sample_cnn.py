"""The lecture's CNN (slidenet.applications.mnist_cnn) on the MNIST digits bundled with slidenet.

Trains on the 4,000 training digits of slidenet.datasets.mnist_sample and checks the accuracy on
its 1,000 held-out test digits, with the recipe of ``make demo`` (slidenet.demo): Adam, learning
rate 1e-3 decayed by 0.6 per epoch, batches of 32, 6 epochs. Always available offline.

    python examples/mnist_sample_cnn.py                        # the full run (README table)
    python examples/mnist_sample_cnn.py --limit 300 --epochs 1 --no-check   # smoke run
"""

from __future__ import annotations

import sys

from example_utils import make_parser, run_on_mnist_sample

CLAIM = 0.97


def main(argv=None) -> int:
    parser = make_parser(
        __doc__.splitlines()[0],
        epochs=6,
        batch_size=32,
        lr=1e-3,
        decay=0.6,
        min_accuracy=CLAIM,
    )
    return run_on_mnist_sample("mnist_cnn", parser, argv, title="mnist_cnn (lecture CNN)")


if __name__ == "__main__":
    sys.exit(main())
