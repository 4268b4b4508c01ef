"""Generated 1D signals that contain a keyword pattern, or not: keyword spotting with Conv1D.

Every signal has Gaussian noise and a few *distractors* (1 to 3 by default) at random places:

* the keyword played backwards (same frequencies, wrong order: only the order tells it apart),
* sine bursts of a random constant frequency and length,
* smooth bumps (Gaussian pulses) of either sign.

Positive signals (label 1) also contain the :data:`KEYWORD` once, at a random position inside
``region`` (``"any"``, ``"first_half"`` or ``"second_half"``), never overlapped by a distractor; its
amplitude varies by +-20 %. Negatives (label 0) have only distractors and noise. The classes
are balanced and shuffled; everything is deterministic given ``seed``, and the test set does not
depend on ``n_train``.

Example:
    >>> import numpy as np
    >>> from slidenet.datasets import keyword
    >>> keyword.KEYWORD.shape
    (12,)
    >>> (x_train, y_train), (x_test, y_test) = keyword.load_data(n_train=8, n_test=4, length=64)
    >>> x_train.shape, x_train.dtype, y_train.dtype, int(y_train.sum())
    ((8, 64, 1), dtype('float32'), dtype('uint8'), 4)
"""

from __future__ import annotations

import numpy as np

from .._validation import positive_int, unknown_name

__all__ = ["KEYWORD", "REGIONS", "load_data"]


def _make_keyword(length: int = 12) -> np.ndarray:
    """An up-chirp (frequency 0.08 -> 0.35 cycles per sample) under a half-sine window, peak 1."""
    t = np.arange(length)
    frequency = np.linspace(0.08, 0.35, length)
    phase = 2.0 * np.pi * (np.cumsum(frequency) - frequency[0])
    pattern = np.sin(np.pi * (t + 0.5) / length) * np.sin(phase + np.pi / 2)
    pattern = (pattern / np.abs(pattern).max()).astype(np.float32)
    pattern.flags.writeable = False
    return pattern


#: The keyword, float32 ``(12,)``: a short up-chirp with peak amplitude 1 (read-only).
KEYWORD = _make_keyword()
#: Accepted values of ``region``.
REGIONS = ("any", "first_half", "second_half")


def _distractor(rng: np.random.Generator) -> np.ndarray:
    """One random distractor waveform (1D float64, 5 to 20 samples)."""
    kind = rng.integers(3)
    if kind == 0:  # the keyword backwards
        return rng.uniform(0.8, 1.2) * KEYWORD[::-1].astype(np.float64)
    if kind == 1:  # a sine burst of constant frequency
        n = int(rng.integers(8, 21))
        t = np.arange(n)
        window = np.sin(np.pi * (t + 0.5) / n)
        return rng.uniform(0.5, 1.2) * window * np.sin(2 * np.pi * rng.uniform(0.05, 0.45) * t)
    width = rng.uniform(1.0, 3.0)  # a Gaussian bump
    t = np.arange(-int(3 * width) - 1, int(3 * width) + 2)
    sign = rng.choice([-1.0, 1.0])
    return sign * rng.uniform(0.5, 1.2) * np.exp(-0.5 * (t / width) ** 2)


def _make(n, length, region, noise, n_distractors, rng):
    labels = rng.permutation(np.arange(n) % 2).astype(np.uint8)
    signals = noise * rng.standard_normal((n, length))
    positions = np.full(n, -1, dtype=np.int64)
    k = len(KEYWORD)
    lo, hi = {
        "any": (0, length - k),
        "first_half": (0, length // 2 - k),
        "second_half": (length // 2, length - k),
    }[region]
    for i in range(n):
        if labels[i]:
            start = int(rng.integers(lo, hi + 1))
            positions[i] = start
            signals[i, start : start + k] += rng.uniform(0.8, 1.2) * KEYWORD
        for _ in range(int(rng.integers(n_distractors[0], n_distractors[1] + 1))):
            wave = _distractor(rng)
            m = len(wave)
            allowed = np.ones(length - m + 1, dtype=bool)
            if labels[i]:  # keep [p, p + m) clear of [start - 1, start + k + 1)
                allowed[max(0, positions[i] - m) : positions[i] + k + 1] = False
            p = int(rng.choice(np.flatnonzero(allowed)))
            signals[i, p : p + m] += wave  # distractors may overlap each other
    return signals.astype(np.float32)[:, :, None], labels, positions


def load_data(
    n_train: int = 1000,
    n_test: int = 200,
    length: int = 128,
    seed: int = 0,
    region: str = "any",
    test_region: str | None = None,
    noise: float = 0.1,
    n_distractors: tuple[int, int] = (1, 3),
    return_positions: bool = False,
):
    """Generate the keyword-spotting data set.

    Args:
        n_train: Number of training signals (half positive; one more negative when odd).
        n_test: Number of test signals.
        length: Samples per signal (at least 64).
        seed: Non-negative integer; the same seed gives the same data.
        region: Where the keyword starts and ends in the training positives: ``"any"``,
            ``"first_half"`` (within samples ``[0, length // 2)``) or ``"second_half"``.
        test_region: The same for the test set; ``None`` means ``region``.
        noise: Standard deviation of the Gaussian noise (the keyword's peak is about 1).
        n_distractors: Inclusive range ``(low, high)`` of the number of distractors per signal.
        return_positions: Also return where each keyword starts (-1 for negatives).

    Returns:
        ``((x_train, y_train), (x_test, y_test))``: signals float32 ``(N, length, 1)`` (NWC, ready
        for Conv1D) and labels uint8 ``(N,)``, 1 = keyword present. With ``return_positions``,
        ``((x_train, y_train, p_train), (x_test, y_test, p_test))`` with the keywords' start
        indices, int64 ``(N,)``.
    """
    n_train = positive_int(n_train, "keyword.load_data: n_train")
    n_test = positive_int(n_test, "keyword.load_data: n_test")
    length = positive_int(length, "keyword.load_data: length")
    if length < 64:
        raise ValueError(f"keyword.load_data: length must be at least 64 samples, got {length}.")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"keyword.load_data: seed must be an integer >= 0, got {seed!r}.")
    if not np.isfinite(noise) or noise < 0:
        raise ValueError(f"keyword.load_data: noise must be a finite number >= 0, got {noise!r}.")
    low, high = (int(v) for v in n_distractors)
    if not 0 <= low <= high:
        raise ValueError(
            f"keyword.load_data: n_distractors must be (low, high) with 0 <= low <= high, "
            f"got {n_distractors!r}."
        )
    test_region = region if test_region is None else test_region
    for name in (region, test_region):
        if name not in REGIONS:
            raise unknown_name("region", name, REGIONS)
    train = _make(
        n_train, length, region, noise, (low, high), np.random.default_rng([int(seed), 0])
    )
    test = _make(
        n_test, length, test_region, noise, (low, high), np.random.default_rng([int(seed), 1])
    )
    if return_positions:
        return train, test
    return train[:2], test[:2]
