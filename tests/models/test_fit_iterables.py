"""fit / evaluate / predict on batch data: image_dataset_from_directory's result, generators and
re-iterable objects, with steps_per_epoch, validation_data as batches, callbacks, initial_epoch
and several inputs; training from a dataset equals training on the same arrays bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import slidenet as keras
from slidenet import layers as L
from slidenet.models.data_adapter import predict_batches


class Batches:
    """A re-iterable of fixed batches (like a data set object), with ``len`` when sized."""

    def __init__(self, batches, sized=True):
        self.batches, self.sized, self.passes = list(batches), sized, 0

    def __iter__(self):
        self.passes += 1
        return iter(self.batches)

    def __len__(self):
        if not self.sized:
            raise TypeError("no len")
        return len(self.batches)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(1)
    for name, count in {"a": 5, "b": 4, "c": 3}.items():
        (root / name).mkdir()
        for i in range(count):
            pixels = rng.integers(0, 256, (5, 6, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(root / name / f"{i}.png")
    return root


def dataset(root, **kwargs):
    kwargs = {"image_size": (5, 6), "batch_size": 4, "shuffle": False, "verbose": False, **kwargs}
    return keras.utils.image_dataset_from_directory(root, **kwargs)


def cnn(input_shape=(5, 6, 3)):
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            L.Input(input_shape),
            L.Conv2D(2, 3, activation="relu"),
            L.Flatten(),
            L.Dense(3, activation="softmax"),
        ]
    )
    model.compile(keras.optimizers.SGD(1e-4), "sparse_categorical_crossentropy", ["accuracy"])
    return model


def arrays(ds):
    xs, ys = zip(*ds, strict=True)
    return np.concatenate(xs), np.concatenate(ys)


def arrays_in_batches(folder):
    return list(dataset(folder))


def random_batches(n, size=3, seed=0):
    rng = np.random.default_rng(seed)
    for _ in range(n):
        yield rng.random((size, 5, 6, 3), np.float32), rng.integers(0, 3, size)


def test_fit_on_dataset_equals_fit_on_arrays_bit_for_bit(folder):
    train, val = dataset(folder), dataset(folder)  # the same files: a check, not a benchmark
    x, y = arrays(train)
    a, b = cnn(), cnn()
    ha = a.fit(train, epochs=3, validation_data=val, verbose=0)
    hb = b.fit(x, y, batch_size=4, epochs=3, shuffle=False, validation_data=arrays(val), verbose=0)
    for wa, wb in zip(a.get_weights(), b.get_weights(), strict=True):
        np.testing.assert_array_equal(wa, wb)
    assert ha.history == hb.history
    assert set(ha.history) == {"loss", "accuracy", "val_loss", "val_accuracy", "learning_rate"}
    assert a.evaluate(train, verbose=0) == b.evaluate(x, y, batch_size=4, verbose=0)
    np.testing.assert_allclose(a.predict(train), b.predict(x), rtol=1e-6)


def test_dataset_batches_are_decoded_during_training(folder, monkeypatch):
    opened, at_batch = [], []
    real_open = Image.open
    monkeypatch.setattr(Image, "open", lambda path, *a, **k: opened.append(path) or real_open(path))
    ds = dataset(folder, shuffle=True, seed=0)
    spy = keras.callbacks.LambdaCallback(
        on_train_batch_begin=lambda b, logs=None: at_batch.append(len(opened))
    )
    cnn().fit(ds, epochs=2, verbose=0, callbacks=[spy])
    assert at_batch == [4, 8, 12, 16, 20, 24]  # one batch of files opened per step


def test_unbuilt_model_builds_from_the_first_batch_and_loses_none(folder):
    model = keras.Sequential([L.Flatten(), L.Dense(3, activation="softmax")])
    model.compile("sgd", "sparse_categorical_crossentropy")
    steps = []
    spy = keras.callbacks.LambdaCallback(on_train_batch_end=lambda b, logs=None: steps.append(b))
    gen = (batch for batch in arrays_in_batches(folder))
    model.fit(gen, epochs=1, verbose=0, callbacks=[spy])
    assert model.built and steps == [0, 1, 2]


def test_generator_with_steps_per_epoch(capsys):
    drawn = []

    def forever():
        rng = np.random.default_rng(0)
        while True:
            drawn.append(1)
            yield rng.random((2, 5, 6, 3), np.float32), rng.integers(0, 3, 2)

    history = cnn().fit(forever(), steps_per_epoch=4, epochs=3, verbose=2)
    assert len(history.history["loss"]) == 3 and len(drawn) == 12
    out = capsys.readouterr().out
    assert "Epoch 3/3 - 4 steps" in out and "loss:" in out
    cnn().fit(random_batches(4), steps_per_epoch=2, epochs=2, verbose=1)  # the bar: steps
    assert "2/2" in capsys.readouterr().err


def test_generator_needs_steps_per_epoch_for_several_epochs():
    with pytest.raises(ValueError, match="pass steps_per_epoch=.*infinite generators"):
        cnn().fit(random_batches(5), epochs=2, verbose=0)
    history = cnn().fit(random_batches(5), epochs=1, verbose=0)  # one epoch: until it ends
    assert len(history.history["loss"]) == 1


def test_generator_that_runs_out_warns_and_stops():
    batches = []
    spy = keras.callbacks.LambdaCallback(on_train_batch_end=lambda b, logs=None: batches.append(b))
    with pytest.warns(UserWarning, match="ran out of data after 2 of 3 batches"):
        history = cnn().fit(
            random_batches(5), steps_per_epoch=3, epochs=4, verbose=0, callbacks=[spy]
        )
    assert batches == [0, 1, 2, 0, 1] and len(history.history["loss"]) == 2


def test_steps_per_epoch_continues_the_pass_of_a_sized_dataset():
    data = Batches(random_batches(3))
    per_epoch = []
    spy = keras.callbacks.LambdaCallback(
        on_epoch_begin=lambda e, logs=None: per_epoch.append(0),
        on_train_batch_end=lambda b, logs=None: per_epoch.__setitem__(-1, per_epoch[-1] + 1),
    )
    with pytest.warns(UserWarning, match="3 batches per pass but steps=2"):
        cnn().fit(data, steps_per_epoch=2, epochs=4, verbose=0, callbacks=[spy])
    assert per_epoch == [2, 1, 2, 1] and data.passes == 2  # as Keras: a pass ends the epoch
    unsized = Batches(random_batches(3), sized=False)
    history = cnn().fit(unsized, epochs=3, verbose=0)  # a full pass per epoch
    assert unsized.passes == 3 and len(history.history["loss"]) == 3


def test_callbacks_initial_epoch_and_validation_steps(folder):
    ds, seen = dataset(folder), []

    class StopAfterTwo(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            seen.append(epoch)
            self.model.stop_training = epoch == 3

    val = Batches(arrays_in_batches(folder))
    history = cnn().fit(
        ds,
        epochs=6,
        initial_epoch=2,
        validation_data=val,
        validation_steps=1,
        callbacks=[StopAfterTwo()],
        verbose=0,
    )
    assert seen == [2, 3] and history.epoch == [2, 3]
    assert "val_loss" in history.history and val.passes == 1  # 2 of its 3 batches used


def test_evaluate_and_predict_on_batches(folder):
    model, ds = cnn(), dataset(folder)
    x, y = arrays(ds)
    assert model.evaluate(iter(list(ds)), verbose=0) == model.evaluate(x, y, 4, verbose=0)
    first = model.evaluate(ds, steps=1, verbose=0)
    assert first == model.evaluate(x[:4], y[:4], verbose=0)
    only_x = (xb for xb, _ in arrays_in_batches(folder))
    np.testing.assert_allclose(model.predict(only_x), model.predict(x), rtol=1e-6)
    assert model.predict(ds, steps=2).shape == (8, 3)
    singles = Batches([(xb,) for xb, _ in arrays_in_batches(folder)])
    assert model.predict(singles).shape == (12, 3)


def test_several_inputs_per_batch():
    rng = np.random.default_rng(0)
    xa, xb = rng.standard_normal((12, 4)), rng.standard_normal((12, 3))
    y = (xa[:, 0] + xb[:, 0] > 0).astype(int)

    def model():
        keras.utils.set_random_seed(0)
        a, b = keras.Input((4,), name="a"), keras.Input((3,), name="b")
        out = L.Dense(2, activation="softmax")(L.Concatenate()([a, b]))
        m = keras.Model([a, b], out)
        m.compile(keras.optimizers.Adam(0.01), "sparse_categorical_crossentropy", ["accuracy"])
        return m

    as_tuples = Batches([((xa[i : i + 4], xb[i : i + 4]), y[i : i + 4]) for i in (0, 4, 8)])
    as_dicts = Batches(
        [({"a": xa[i : i + 4], "b": xb[i : i + 4]}, y[i : i + 4]) for i in (0, 4, 8)]
    )
    ref, m1, m2 = model(), model(), model()
    ref.fit([xa, xb], y, batch_size=4, epochs=2, shuffle=False, verbose=0)
    m1.fit(as_tuples, epochs=2, verbose=0)
    m2.fit(as_dicts, epochs=2, validation_data=as_dicts, verbose=0)
    for w, w1, w2 in zip(ref.get_weights(), m1.get_weights(), m2.get_weights(), strict=True):
        np.testing.assert_array_equal(w, w1)
        np.testing.assert_array_equal(w, w2)
    assert m1.evaluate(as_dicts, verbose=0) == ref.evaluate([xa, xb], y, 4, verbose=0)
    # Model.predict overrides TrainingMixin.predict; the helper itself handles several inputs
    np.testing.assert_allclose(predict_batches(m1, as_tuples), ref.predict([xa, xb]), rtol=1e-6)


def test_errors_with_batch_data(folder):
    model, ds = cnn(), dataset(folder)
    x, y = arrays(ds)
    with pytest.raises(ValueError, match="y must be None"):
        model.fit(ds, y, verbose=0)
    with pytest.raises(ValueError, match="validation_split needs arrays"):
        model.fit(ds, validation_split=0.2, verbose=0)
    with pytest.raises(ValueError, match="steps_per_epoch applies to data given as batches"):
        model.fit(x, y, steps_per_epoch=2, verbose=0)
    with pytest.raises(ValueError, match="steps_per_epoch must be a positive integer"):
        model.fit(ds, steps_per_epoch=0, verbose=0)
    with pytest.raises(ValueError, match="batch 1 holds x only"):
        model.fit(Batches([x[:4]]), verbose=0)
    with pytest.raises(ValueError, match="sample_weight"):
        model.fit(Batches([(x[:4], y[:4], np.ones(4))]), verbose=0)
    with pytest.raises(ValueError, match=r"fit \(batch 2\): x has shape \(4, 5, 5, 3\)"):
        model.fit(Batches([(x[:4], y[:4]), (x[4:8, :, :5], y[4:8])]), verbose=0)
    with pytest.raises(ValueError, match="yielded no batches"):
        model.fit(Batches([]), verbose=0)
    with pytest.raises(ValueError, match="yielded no batches"):
        model.predict(iter([]))
    with pytest.raises(ValueError, match="validation_data must be a tuple"):
        model.fit(ds, validation_data=x, verbose=0)
    with pytest.raises(ValueError, match="validation_data is a generator.*validation_steps"):
        model.fit(ds, epochs=2, validation_data=random_batches(2), verbose=0)
