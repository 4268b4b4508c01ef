"""A siamese net says whether two handwritten digits are the same digit (>= 94 % of test pairs).

One encoder, a small conv net built as its own functional Model, is called on both images of a
pair, so both sides use the same weights (a shared layer: the model holds one copy, and training
adds up the gradients of the two calls). The head compares the two 32-number embeddings e1, e2:
(e1 - e2) * (e1 - e2) (layers.Subtract, then layers.Multiply of the difference with itself: a
squared difference per feature, symmetric in the two images) -> Dense(1, sigmoid), "same digit?".
Binary cross-entropy on pairs of the bundled MNIST sample (slidenet.datasets.mnist_sample): half
of the pairs show the same digit (two different images), half two different digits. Training
pairs come from the 4,000 training digits, test pairs from the 1,000 held-out test digits only.
Every epoch draws new training partners for the same labels (--fixed-pairs keeps the first pairs:
the net then memorises them and reaches 92.05 % instead of 95.10 %).

    python examples/siamese_digits.py                                   # the full run (README)
    python examples/siamese_digits.py --limit 64 --epochs 1 --no-check   # smoke run
"""

from __future__ import annotations

import sys
import time
from dataclasses import replace

import numpy as np
from example_utils import images_01, make_parser, report, train_and_evaluate

CLAIM = 0.94


def pair_indices(y, same, rng):
    """Indices (left, right) of one pair per entry of ``same``: two different images, of one
    digit where ``same`` is 1, of two different digits (the partner's drawn uniformly from the
    other nine) where it is 0."""
    by_class = [np.flatnonzero(y == c) for c in range(10)]
    left = rng.integers(0, len(y), len(same))
    right = np.empty_like(left)
    for i, (a, s) in enumerate(zip(left, same, strict=True)):
        candidates = by_class[y[a] if s else (y[a] + rng.integers(1, 10)) % 10]
        right[i] = a
        while right[i] == a:
            right[i] = candidates[rng.integers(0, len(candidates))]
    return left, right


def make_pairs(x, y, n, rng):
    """``n`` pairs of images from (x, y): ([left, right], same), same = 1 for half of them."""
    same = (np.arange(n) % 2 == 0).astype(np.float32)
    rng.shuffle(same)
    left, right = pair_indices(y, same, rng)
    return [x[left], x[right]], same


def fresh_pairs(x, y, same):
    """For train_and_evaluate's ``augment``: every epoch new pairs with the same labels ``same``
    (so the net sees new combinations of the training digits instead of memorising pairs)."""

    def augment(_, rng):
        left, right = pair_indices(y, same, rng)
        return [x[left], x[right]]

    return augment


def build_siamese(input_shape=(28, 28, 1), embedding=32):
    """(siamese model, encoder, head layer): the encoder is one Model called on both inputs."""
    from slidenet import Input, Model, layers

    image = Input(input_shape, name="image")
    h = layers.Conv2D(8, 3, activation="relu", name="conv1")(image)
    h = layers.MaxPooling2D(2, name="pool1")(h)
    h = layers.Conv2D(16, 3, activation="relu", name="conv2")(h)
    h = layers.MaxPooling2D(2, name="pool2")(h)
    h = layers.Dense(embedding, activation="relu", name="embedding")(layers.Flatten()(h))
    encoder = Model(image, h, name="encoder")

    left, right = Input(input_shape, name="left"), Input(input_shape, name="right")
    e1, e2 = encoder(left), encoder(right)  # one encoder, two calls: shared weights
    diff = layers.Subtract(name="difference")([e1, e2])
    squared = layers.Multiply(name="squared_difference")([diff, diff])
    head = layers.Dense(1, activation="sigmoid", name="same_digit")
    return Model([left, right], head(squared), name="siamese"), encoder, head


def check_shared(model, encoder, head):
    """The encoder's weights exist once: the model counts them once and holds one encoder."""
    n_enc, n_head = encoder.count_params(), head.count_params()
    if model.count_params() != n_enc + n_head:
        raise SystemExit(
            f"weights not shared: the model has {model.count_params()} parameters, "
            f"encoder {n_enc} + head {n_head} = {n_enc + n_head}"
        )
    if sum(layer is encoder for layer in model.layers) != 1:
        raise SystemExit("the encoder should be one layer of the siamese model")
    print(f"parameters: {model.count_params():,} = encoder {n_enc:,} (shared) + head {n_head:,}")


def main(argv=None) -> int:
    parser = make_parser(
        __doc__.splitlines()[0],
        epochs=8,
        batch_size=32,
        lr=2e-3,
        decay=0.8,
        min_accuracy=CLAIM,
    )
    parser.add_argument("--pairs", type=int, default=8000, help="training pairs (8000)")
    parser.add_argument("--test-pairs", type=int, default=2000, help="test pairs (2000)")
    parser.add_argument(
        "--fixed-pairs",
        action="store_true",
        help="train on the same pairs every epoch (default: new training pairs each epoch)",
    )
    args = parser.parse_args(argv)
    if args.limit is not None and args.limit < 1:
        raise SystemExit(f"--limit must be at least 1, got {args.limit}.")
    total_start = time.perf_counter()

    from slidenet.datasets import mnist_sample
    from slidenet.utils import set_random_seed

    (x_train, y_train), (x_test, y_test) = mnist_sample.load_data()
    n_train, n_test = args.pairs, args.test_pairs
    if args.limit is not None:  # --limit N: N training and N test pairs
        n_train, n_test = min(n_train, args.limit), min(n_test, args.limit)
    rng = np.random.default_rng([args.seed, 2])
    x_train = images_01(x_train)
    train = make_pairs(x_train, y_train, n_train, rng)
    test = make_pairs(images_01(x_test), y_test, n_test, rng)
    set_random_seed(args.seed)
    model, encoder, head = build_siamese()
    check_shared(model, encoder, head)
    augment = None if args.fixed_pairs else fresh_pairs(x_train, y_train, train[1])
    result = train_and_evaluate(
        model, (train, test), args, loss="binary_crossentropy", augment=augment
    )
    result = replace(result, n_train=n_train, n_test=n_test)  # pairs, not the 2 input arrays
    check_shared(model, encoder, head)
    return report("siamese (shared encoder)", "MNIST sample digit pairs", result, args, total_start)


if __name__ == "__main__":
    sys.exit(main())
