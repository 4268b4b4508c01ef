"""The keyword scanner: shared-weight detectors slid along a signal, then a max over positions."""

from __future__ import annotations

from slidenet._validation import positive_int
from slidenet.layers import Conv1D, Dense, GlobalMaxPooling1D, Input
from slidenet.models.sequential import Sequential


def keyword_scanner(
    input_shape=(128, 1),
    classes=1,
    filters=16,
    kernel_size=12,
    name="keyword_scanner",
) -> Sequential:
    """Detect a short pattern anywhere in a 1D signal.

    Conv1D(filters, kernel_size, relu) -> GlobalMaxPooling1D -> Dense(classes, sigmoid).
    Every filter is one detector scanned along the whole signal (the same weights at every
    position); the global max keeps its best match wherever it is, so a keyword learned at the
    start is found at the end too. Input (N, L, D) -> output (N, classes), each a probability
    (sigmoid: one independent yes/no per class). Parameters: (kernel_size * D + 1) * filters +
    (filters + 1) * classes; 225 with the defaults (the keyword of
    :mod:`slidenet.datasets.keyword` is 12 samples long).

    >>> model = keyword_scanner()
    >>> model.count_params(), model.output_shape
    (225, (None, 1))
    """
    return Sequential(
        [
            Input(input_shape),
            Conv1D(
                positive_int(filters, "keyword_scanner: filters"),
                kernel_size,
                activation="relu",
                kernel_initializer="he_normal",
            ),
            GlobalMaxPooling1D(),
            Dense(positive_int(classes, "keyword_scanner: classes"), activation="sigmoid"),
        ],
        name=name,
    )


__all__ = ["keyword_scanner"]
