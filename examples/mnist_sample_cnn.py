"""The lecture's CNN (slidenet.applications.mnist_cnn) on the MNIST digits bundled with slidenet.

Trains on the 4,000 training digits of slidenet.datasets.mnist_sample and checks the accuracy on
its 1,000 held-out test digits, with the recipe of ``make demo`` (slidenet.demo): Adam, learning
rate 1e-3 decayed by 0.6 per epoch, batches of 32, 6 epochs. Always available offline.

    python examples/mnist_sample_cnn.py                        # the full run (README table)
    python examples/mnist_sample_cnn.py --limit 300 --epochs 1 --no-check   # smoke run
"""

from __future__ import annotations

import sys
import time

from example_utils import images_01, limit, make_parser, report, train_and_evaluate

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
    args = parser.parse_args(argv)
    total_start = time.perf_counter()

    from slidenet import applications
    from slidenet.datasets import mnist_sample
    from slidenet.utils import set_random_seed

    (x_train, y_train), (x_test, y_test) = limit(mnist_sample.load_data(), args.limit)
    data = (images_01(x_train), y_train), (images_01(x_test), y_test)
    set_random_seed(args.seed)
    model = applications.mnist_cnn()
    result = train_and_evaluate(model, data, args)
    return report("mnist_cnn (lecture CNN)", "MNIST sample (bundled)", result, args, total_start)


if __name__ == "__main__":
    sys.exit(main())
