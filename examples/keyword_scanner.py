"""The keyword scanner finds a keyword where it never saw one: trained on the first half of the
signals, tested on the second half (>= 95 % test accuracy).

slidenet.applications.keyword_scanner(filters=16) is Conv1D(16, 12, relu) -> GlobalMaxPooling1D ->
Dense(1, sigmoid): each filter is one detector slid along the whole signal with the same weights,
and the global max keeps its best match wherever it is. The data (slidenet.datasets.keyword) are
noisy signals of 128 samples with distractors (among them the keyword played backwards); half of
them hold the 12-sample keyword. Training positives have it only in the first half; the test
positives only in the second half, so the accuracy measures shift invariance. A second test set
with the keyword anywhere is reported too.

    python examples/keyword_scanner.py                        # the full run (README table)
    python examples/keyword_scanner.py --limit 200 --epochs 1 --no-check   # smoke run
"""

from __future__ import annotations

import sys
import time

from example_utils import limit, make_parser, report, train_and_evaluate

CLAIM = 0.95


def main(argv=None) -> int:
    parser = make_parser(
        __doc__.splitlines()[0],
        epochs=30,
        batch_size=32,
        lr=1e-2,
        decay=0.9,
        min_accuracy=CLAIM,
    )
    parser.add_argument("--n-train", type=int, default=4000, help="training signals (4000)")
    parser.add_argument("--n-test", type=int, default=1000, help="test signals (1000)")
    parser.add_argument("--filters", type=int, default=16, help="detectors (Conv1D filters, 16)")
    args = parser.parse_args(argv)
    total_start = time.perf_counter()

    from slidenet import applications
    from slidenet.datasets import keyword
    from slidenet.utils import set_random_seed

    data = keyword.load_data(
        n_train=args.n_train,
        n_test=args.n_test,
        seed=args.seed,
        region="first_half",
        test_region="second_half",
    )
    data = limit(data, args.limit)
    _, (x_any, y_any) = limit(
        keyword.load_data(n_train=1, n_test=args.n_test, seed=args.seed, region="any"), args.limit
    )
    set_random_seed(args.seed)
    model = applications.keyword_scanner(filters=args.filters)
    result = train_and_evaluate(model, data, args, loss="binary_crossentropy")
    _, acc_any = model.evaluate(x_any, y_any, batch_size=500, verbose=0)
    print(f"test accuracy with the keyword anywhere: {100 * acc_any:.2f}%")
    return report(
        "keyword_scanner",
        "keyword signals: train first half, test second half",
        result,
        args,
        total_start,
    )


if __name__ == "__main__":
    sys.exit(main())
