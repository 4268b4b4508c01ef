"""Bounded memory: predict, fit and evaluate read a memory-mapped data set one batch at a time,
casting each batch to float32; they never make a float32 copy of the whole set (4x the uint8
images). Peak memory is measured in a subprocess."""

import numpy as np
import pytest
from hardening_workers import run_worker

import slidenet as keras


@pytest.mark.parametrize(("mode", "n"), [("predict", 100_000), ("fit", 20_000)])
def test_peak_memory_on_a_memmap_is_bounded(tmp_path, mode, n):
    r = run_worker("memory", mode, tmp_path, n, timeout=300)
    assert r["float32_copy_mb"] == pytest.approx(n * 28 * 28 * 4 / 2**20)
    # NumPy's own allocations (traced): a few batches and the (n, 10) output, not the data set
    assert r["traced_peak_mb"] < 24 + n * 10 * 4 / 2**20, r
    # the process: what it had, plus the pages of the file it read (the kernel can drop those),
    # plus a few tens of MB; a float32 copy alone would add float32_copy_mb
    grown = r["peak_rss_mb"] - r["baseline_rss_mb"]
    assert grown < r["input_mb"] + 40, r
    assert grown < r["float32_copy_mb"] / 2, r


def memmapped_images(tmp_path, n=300, seed=0):
    rng = np.random.default_rng(seed)
    path = tmp_path / "x.npy"
    np.save(path, rng.integers(0, 256, (n, 8, 8), dtype=np.uint8))
    return np.load(path, mmap_mode="r"), rng.integers(0, 3, n)


def tiny():
    keras.utils.set_random_seed(3)
    model = keras.Sequential(
        [
            keras.layers.Conv2D(3, 3, activation="relu", input_shape=(8, 8, 1)),
            keras.layers.Flatten(),
            keras.layers.Dropout(0.2),
            keras.layers.Dense(3, activation="softmax"),
        ]
    )
    model.compile("adam", "sparse_categorical_crossentropy", ["accuracy"])
    return model


def test_memmap_gives_the_same_bits_as_the_float32_array(tmp_path):
    x_map, y = memmapped_images(tmp_path)
    x_mem = np.asarray(x_map, dtype=np.float32)[..., None]
    a = tiny()
    ha = a.fit(x_map, y, batch_size=32, epochs=2, validation_split=0.2, verbose=0)
    b = tiny()  # seeded again: the same weights and shuffling
    hb = b.fit(x_mem, y, batch_size=32, epochs=2, validation_split=0.2, verbose=0)
    assert ha.history == hb.history
    for u, v in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_array_equal(u, v)
    np.testing.assert_array_equal(a.predict(x_map, batch_size=64), b.predict(x_mem, batch_size=64))
    assert a.evaluate(x_map, y, verbose=0) == b.evaluate(x_mem, y, verbose=0)
    assert isinstance(x_map, np.memmap) and x_map.dtype == np.uint8  # the input is untouched


def test_nan_in_a_float_memmap_is_found_in_chunks(tmp_path, monkeypatch):
    import slidenet.models.training as training

    x = np.zeros((50, 8, 8, 1), np.float32)
    x[37, 2, 5, 0] = np.nan
    x[49, 0, 0, 0] = np.inf
    np.save(tmp_path / "f.npy", x)
    x_map = np.load(tmp_path / "f.npy", mmap_mode="r")
    model, chunks = tiny(), []
    real = training._check_finite
    monkeypatch.setattr(
        training, "_check_finite", lambda x, who: real(x, who, chunk_elements=640) or None
    )
    monkeypatch.setattr(
        np, "isfinite", lambda a, _f=np.isfinite: chunks.append(np.shape(a)) or _f(a)
    )
    with pytest.raises(ValueError, match=r"predict: x contains 2 NaN or Inf value\(s\)"):
        model.predict(x_map)
    assert max(c[0] for c in chunks if c) == 10  # 640 elements = 10 images at a time
