"""Graph models (keras.Model) through the tools made for Sequential: the CLI (train, --resume,
evaluate, summary, explain), activation maps and attributions, plot_model, distributed training."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from cli_test_helpers import run_cli

import slidenet as keras
from slidenet import viz
from slidenet.explain.text import explain_model

GRAPH_NETS = '''\
import slidenet as keras


def branchy(input_shape=(28, 28, 1), classes=2):
    """Two branches joined by Add (a shortcut), a shared Dense, dropout."""
    inputs = keras.Input(input_shape, name="image")
    a = keras.layers.Conv2D(4, 3, padding="same", activation="relu")(inputs)
    b = keras.layers.Conv2D(4, 1)(inputs)
    x = keras.layers.Add()([a, b])
    x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.Dropout(0.25)(keras.layers.Flatten()(x))
    outputs = keras.layers.Dense(classes, activation="softmax")(x)
    return keras.Model(inputs, outputs, name="branchy")
'''


def graph_model(seed=0):
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((10, 10, 1), name="image")
    a = keras.layers.Conv2D(3, 3, padding="same", activation="relu", name="conv_a")(inputs)
    b = keras.layers.Conv2D(3, 1, name="conv_b")(inputs)
    shared = keras.layers.Conv2D(3, 3, padding="same", name="shared")
    x = keras.layers.concatenate([shared(a), shared(b)], name="concat")
    x = keras.layers.MaxPooling2D(2, name="pool")(x)
    outputs = keras.layers.Dense(3, activation="softmax")(keras.layers.Flatten()(x))
    return keras.Model(inputs, outputs)


def test_train_resume_evaluate_summary_explain_a_graph_model(capsys, tmp_path):
    nets = tmp_path / "graph_nets.py"
    nets.write_text(GRAPH_NETS)
    common = ("--model", f"{nets}:branchy", "--dataset", "xo", "--batch-size", "50")
    common += ("--seed", "3", "--verbose", "0", "--lr", "0.003")
    straight, part = tmp_path / "straight.slidenet", tmp_path / "part.slidenet"
    for out, epochs in ((straight, "2"), (part, "1")):
        code, _, err = run_cli(capsys, "train", *common, "--epochs", epochs, "--out", str(out))
        assert code == 0, err
    code, _, err = run_cli(
        capsys, "train", "--resume", str(part), "--epochs", "2", "--verbose", "0"
    )
    assert code == 0, err
    a, b = keras.load_model(straight), keras.load_model(part)
    assert isinstance(b, keras.Model) and b.name == "branchy"
    assert all(np.array_equal(p, q) for p, q in zip(a.get_weights(), b.get_weights(), strict=True))
    assert a.history.history == b.history.history
    code, out, err = run_cli(capsys, "evaluate", str(part), "--dataset", "xo")
    assert code == 0, err
    assert "accuracy" in out
    code, out, err = run_cli(capsys, "summary", str(part))
    assert code == 0, err
    assert "Connected to" in out and "conv2d" in out and "[0][0]" in out
    code, out, err = run_cli(capsys, "explain", "model", str(part))
    assert code == 0, err
    assert "from: " in out and "Add" in out


def test_activation_maps_saliency_and_feature_visualisation_of_a_graph():
    model = graph_model()
    image = np.random.default_rng(0).random((10, 10))
    maps = viz.activation_maps(model, image)
    assert [layer.name for layer, _ in maps] == ["conv_a", "shared", "conv_b", "pool"]
    by_name = {layer.name: m for layer, m in maps}
    assert by_name["shared"].shape == (10, 10, 3)  # a shared layer: its last call
    x = image[None, ..., None].astype("float32")
    conv_b = model.get_layer("conv_b")
    np.testing.assert_allclose(by_name[conv_b.name], conv_b(x)[0], rtol=1e-6)
    saliency = viz.saliency_map(model, image, class_index=1)
    assert saliency.shape == (10, 10, 1)
    # the saliency is d p_1 / d x: compare one entry with a finite difference in float64
    model64 = graph_model()
    for layer in [model64, *model64.layers]:
        layer.dtype = np.dtype("float64")
    model64.set_weights([w.astype("float64") for w in model.get_weights()])
    s64 = viz.saliency_map(model64, image, class_index=1, score="probability")
    eps, idx = 1e-6, (4, 5)
    up, down = image.copy(), image.copy()
    up[idx] += eps
    down[idx] -= eps
    numeric = (model64.predict(up[None])[0, 1] - model64.predict(down[None])[0, 1]) / (2 * eps)
    assert abs(s64[idx][0] - numeric) < 1e-6 * max(1.0, abs(numeric))
    feature = viz.feature_visualization(model, "shared", 0, steps=3)
    assert np.asarray(feature[0] if isinstance(feature, tuple) else feature).shape[:2] == (10, 10)


def test_explain_model_names_inputs_of_every_layer():
    text = explain_model(graph_model())
    assert "concat (Concatenate): 10x10x3 & 10x10x3 -> 10x10x6" in text
    assert "from: shared + shared" in text


def test_plot_model_writes_dot_and_png(tmp_path):
    model = graph_model()
    dot = keras.utils.model_to_dot(model, show_shapes=True)
    assert dot.count("->") == 8  # input->2 convs, 2 convs->shared, shared->concat, 3 more
    assert "(None, 10, 10, 6)" in dot
    path = keras.utils.plot_model(model, tmp_path / "m.dot")
    assert path.read_text() == keras.utils.model_to_dot(model)
    if shutil.which("dot") is None:
        with pytest.raises(RuntimeError, match="apt-get install graphviz"):
            keras.utils.plot_model(model, tmp_path / "m.png")
        return
    keras.utils.plot_model(model, tmp_path / "m.png", show_shapes=True)
    assert (tmp_path / "m.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="ending in"):
        keras.utils.plot_model(model, tmp_path / "m.jpeg")


def test_plot_model_without_graphviz_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(RuntimeError, match="apt-get install graphviz"):
        keras.utils.plot_model(graph_model(), tmp_path / "m.png")
    assert not (tmp_path / "m.png").exists()


def test_distributed_optimizer_trains_a_graph_model_alone(monkeypatch):
    from slidenet import distributed as dist
    from slidenet.distributed import comm

    monkeypatch.setitem(comm._state, "comm", comm._SelfComm())
    monkeypatch.setitem(comm._state, "active", 0)
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(24, 10, 10, 1)).astype("float32"), rng.integers(0, 3, 24)
    runs = []
    for wrap in (False, True):
        model = graph_model(seed=5)
        opt = keras.optimizers.Adam(0.01)
        model.compile(
            dist.DistributedOptimizer(opt) if wrap else opt, "sparse_categorical_crossentropy"
        )
        callbacks = [dist.BroadcastInitialWeights()] if wrap else []
        model.fit(x, y, batch_size=6, epochs=2, verbose=0, callbacks=callbacks)
        runs.append(model.get_weights())
    assert all(np.array_equal(a, b) for a, b in zip(*runs, strict=True))
