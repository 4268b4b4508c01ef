"""The JSON API of ``slidenet explore``: every number equals what slidenet's layers compute.

Driven with Starlette's test client (Host 127.0.0.1, as a browser on this machine sends it).
"""

from __future__ import annotations

import base64
import itertools

import numpy as np
import pytest
from explore_helpers import digits, digits_cnn, graph_cnn, layer_outputs, odd_cnn, png

pytest.importorskip("starlette")
from starlette.testclient import TestClient  # noqa: E402

from slidenet.explore import create_app  # noqa: E402


def client_for(model, **kwargs) -> TestClient:
    return TestClient(create_app(model, **kwargs), base_url="http://127.0.0.1")


def dequantised(layer) -> np.ndarray:
    lo, hi = layer["range"]
    q = np.frombuffer(base64.b64decode(layer["data"]), dtype=np.uint8).astype(np.float64)
    return (lo + q / 255 * (hi - lo)).reshape(layer["shape"])


@pytest.fixture(scope="module")
def digits_client():
    x, y = digits()
    return client_for(digits_cnn(), dataset=(x[:200], y[:200]))


def test_model_info_lists_one_column_per_layer(digits_client):
    info = digits_client.get("/api/model").json()
    model = digits_cnn()
    assert [c["name"] for c in info["columns"]] == ["input"] + [lay.name for lay in model.layers]
    assert [c["kind"] for c in info["columns"]] == [
        "input", "conv", "pool", "conv", "pool", "vector", "dense", "dense"
    ]  # fmt: skip
    assert info["input_shape"] == [28, 28, 1]
    assert info["class_names"] == [str(i) for i in range(10)]
    assert info["dataset"]["count"] == 200
    assert sorted({e["label"] for e in info["dataset"]["examples"]}) == list(range(10))


def test_run_returns_every_layer_and_the_models_probabilities(digits_client):
    x, y = digits()
    model = digits_cnn()
    res = digits_client.post("/api/run", json={"dataset_index": 7}).json()
    image = x[7, :, :, None] / np.float32(255)
    expected = layer_outputs(model, image)
    assert res["source"] == {"dataset_index": 7, "label": int(y[7])}
    assert res["layers"][0]["shape"] == [28, 28, 1]
    np.testing.assert_allclose(dequantised(res["layers"][0]), image, atol=0.5 / 255 + 1e-7)
    for layer in res["layers"][1:]:
        want = expected[layer["name"]]
        assert layer["shape"] == list(want.shape)
        assert layer["range"] == pytest.approx([want.min(), want.max()], rel=1e-6)
        tolerance = (want.max() - want.min()) / 510 + 1e-6
        np.testing.assert_allclose(dequantised(layer), want, atol=tolerance)
    probs = model.predict(image[None])[0]
    assert res["probabilities"] == pytest.approx(probs.tolist(), abs=1e-6)
    assert res["predicted"] == int(np.argmax(probs))
    assert res["server_ms"] < 1000


def test_png_upload_is_prepared_as_predict_does(digits_client):
    """A 56x56 PNG of a digit on white paper: resized to 28x28 (Lanczos) and, with ?invert=1,
    inverted; the probabilities are those of model.predict on that image."""
    from slidenet.cli._data import resize

    x, _ = digits()
    paper = 1.0 - np.kron(x[3] / 255.0, np.ones((2, 2)))
    res = digits_client.post("/api/run?invert=1", content=png(paper)).json()
    assert any("resized to 28x28" in n for n in res["notes"])
    expected = 1.0 - resize(np.round(paper * 255).astype(np.float32) / 255, 28, 28)
    probs = digits_cnn().predict(expected[None, :, :, None])[0]
    assert res["probabilities"] == pytest.approx(probs.tolist(), abs=1e-5)
    light = digits_client.post("/api/run", content=png(paper)).json()
    assert any("mostly light" in n and "invert" in n for n in light["notes"])


def _units(client, res, info):
    """Every unit of every column (a sample of positions), answered by /api/unit."""
    for column, layer in zip(info["columns"][1:], res["layers"][1:], strict=True):
        shape = layer["shape"]
        if len(shape) == 1:
            positions = [{"k": k} for k in range(shape[0])]
        else:
            h, w, c = shape
            corners = itertools.product({0, h // 2, h - 1}, {0, w // 2, w - 1}, {0, c - 1})
            positions = [{"y": a, "x": b, "k": k} for a, b, k in corners]
        for pos in positions:
            params = {"run": res["run"], "layer": column["name"], **pos}
            reply = client.get("/api/unit", params=params)
            assert reply.status_code == 200, reply.text
            yield column, pos, reply.json()


@pytest.mark.parametrize("which", ["digits", "odd", "graph"])
def test_every_unit_equals_the_layer_output(which, digits_client):
    if which == "digits":
        client, model = digits_client, digits_cnn()
        image = digits()[0][11, :, :, None] / np.float32(255)
        res = client.post("/api/run", json={"dataset_index": 11}).json()
    else:
        model = odd_cnn() if which == "odd" else graph_cnn()
        client = client_for(model)
        rng = np.random.default_rng(5)
        shape = model.input_shape[1:]
        image = rng.uniform(0, 1, shape).astype(np.float32)
        res = client.post("/api/run", content=png(image[..., 0] if shape[2] == 1 else image))
        res = res.json()
        image = np.round(image * 255).astype(np.float32) / np.float32(255)
    info = client.get("/api/model").json()
    expected = layer_outputs(model, image)
    kinds = set()
    for column, pos, unit in _units(client, res, info):
        kinds.add(unit["kind"])
        want = expected[column["name"]]
        at = (pos["k"],) if want.ndim == 1 else (pos["y"], pos["x"], pos["k"])
        assert unit["map_value"] == pytest.approx(float(want[at]), rel=1e-6, abs=1e-7)
        if unit["kind"] in ("conv", "dense"):
            products = np.asarray(unit.get("products", [0.0]), dtype=np.float64)
            if unit["kind"] == "conv":
                patch = np.asarray(unit["patch"])
                kernel = np.asarray(unit["kernel"])
                np.testing.assert_allclose(products, patch * kernel, rtol=1e-12)
                assert unit["sum"] == pytest.approx(products.sum(), rel=1e-9, abs=1e-12)
                assert unit["channel_sums"] == pytest.approx(products.sum(axis=(0, 1)).tolist())
            assert unit["value"] == pytest.approx(unit["sum"] + unit["bias"], abs=1e-12)
            assert unit["activated"] == pytest.approx(float(want[at]), rel=1e-5, abs=1e-6)
        if unit["kind"] == "pool":
            assert unit["value"] == pytest.approx(float(want[at]), rel=1e-6, abs=1e-7)
    assert {"conv", "pool", "dense"} <= kinds


def test_conv_unit_patch_is_the_padded_window_of_the_layer_below(digits_client):
    model = digits_cnn()
    image = digits()[0][2, :, :, None] / np.float32(255)
    run = digits_client.post("/api/run", json={"dataset_index": 2}).json()["run"]
    conv = model.layers[0]
    unit = digits_client.get(
        "/api/unit", params={"run": run, "layer": conv.name, "y": 0, "x": 27, "k": 3}
    ).json()
    padded = np.pad(image, ((2, 2), (2, 2), (0, 0)))
    np.testing.assert_array_equal(np.asarray(unit["patch"]), padded[0:5, 27:32])
    np.testing.assert_array_equal(np.asarray(unit["kernel"]), conv.kernel[:, :, :, 3])
    assert unit["bias"] == pytest.approx(float(conv.bias[3]))
    assert unit["window"] == {"top": -2, "left": 25, "bottom": 2, "right": 29}
    assert unit["input_window"] == {
        "top": 0, "left": 25, "bottom": 2, "right": 27, "height": 5, "width": 5
    }  # fmt: skip
    padding = np.asarray(unit["padding"])
    assert padding[:2].all() and padding[:, 3:].all() and not padding[2:, :3].any()
    # the second conv's unit sees 5x5 of the pooled map: 14x14 input pixels (pool 2, conv 5)
    unit = digits_client.get(
        "/api/unit", params={"run": run, "layer": model.layers[2].name, "y": 4, "x": 4, "k": 0}
    ).json()
    assert unit["input_window"]["height"] == unit["input_window"]["width"] == 14


def test_pool_units_name_the_winner_or_the_mean(digits_client):
    run = digits_client.post("/api/run", json={"dataset_index": 4}).json()["run"]
    model = digits_cnn()
    unit = digits_client.get(
        "/api/unit", params={"run": run, "layer": model.layers[1].name, "y": 5, "x": 6, "k": 1}
    ).json()
    patch = np.asarray(unit["patch"], dtype=np.float64)
    assert unit["pool"] == "max" and unit["value"] == patch.max()
    assert patch[tuple(unit["winner"])] == patch.max()
    assert unit["winner_at"] == [10 + unit["winner"][0], 12 + unit["winner"][1]]
    odd = odd_cnn()
    client = client_for(odd)
    run = client.post("/api/run", content=png(np.full((15, 13, 3), 0.5))).json()["run"]
    params = {"run": run, "layer": odd.layers[3].name, "y": 3, "x": 1, "k": 2}
    unit = client.get("/api/unit", params=params).json()  # the last row of a 'same' window:
    assert unit["pool"] == "avg" and unit["count"] == 2  # padding is not counted in the mean
    assert unit["padding"] == [[False, False], [True, True]]
    assert unit["value"] == pytest.approx(unit["sum"] / 2)


def test_dense_unit_lists_its_largest_contributors_with_their_place(digits_client):
    run = digits_client.post("/api/run", json={"dataset_index": 0}).json()["run"]
    model = digits_cnn()
    dense = model.layers[5]
    unit = digits_client.get("/api/unit", params={"run": run, "layer": dense.name, "k": 9}).json()
    products = [abs(c["product"]) for c in unit["top"]]
    assert products == sorted(products, reverse=True) and len(products) == 12
    pool = model.layers[3].name  # the Dense's input (through Flatten); names vary by test order
    pooled = layer_outputs(model, digits()[0][0, :, :, None] / np.float32(255))[pool]
    for c in unit["top"]:
        assert c["input"] == pytest.approx(float(pooled[tuple(c["at"])]))
        assert c["weight"] == pytest.approx(float(dense.kernel[c["index"], 9]))
    assert unit["sum"] == pytest.approx(sum(c["product"] for c in unit["top"]) + unit["rest"])


def test_graph_model_columns_follow_the_topological_order():
    model = graph_cnn()
    info = client_for(model).get("/api/model").json()
    names = [c["name"] for c in info["columns"]]
    assert names == [layer.name for layer in model.layers]
    merge = info["columns"][names.index("merge")]
    assert merge["inputs"] == ["branch_a", "branch_b"] and info["graph"] is True


def test_runs_are_kept_in_a_bounded_lru_cache():
    client = client_for(graph_cnn(), max_runs=3)
    image = png(np.zeros((12, 12)))
    runs = [client.post("/api/run", content=image).json()["run"] for _ in range(4)]
    first = client.get("/api/unit", params={"run": runs[0], "layer": "scores", "k": 0})
    assert first.status_code == 404 and "run the image again" in first.json()["error"]
    for run in runs[1:]:
        assert client.get("/api/unit", params={"run": run, "layer": "scores", "k": 1}).is_success


def test_create_app_refuses_what_it_cannot_show(monkeypatch):
    import importlib.util

    import slidenet as keras

    dense = keras.Sequential([keras.layers.Input((10,)), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match=r"image classifiers; .* \(None, 10\)"):
        create_app(dense)
    inputs = keras.Input((8, 8, 1))
    maps = keras.layers.Conv2D(2, 3)(inputs)
    with pytest.raises(ValueError, match="needs class scores"):
        create_app(keras.Model(inputs, maps))
    with pytest.raises(ValueError, match="2 outputs"):
        flat = keras.layers.Flatten()(maps)
        create_app(keras.Model(inputs, [keras.layers.Dense(2)(flat), keras.layers.Dense(3)(flat)]))
    with pytest.raises(ValueError, match="unknown dataset 'digits'"):
        create_app(graph_cnn(), dataset="digits")
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda n, *a: None if n == "starlette" else real(n, *a)
    )
    with pytest.raises(ImportError, match=r"pip install 'slidenet\[explore\]' \(missing: starl"):
        create_app(graph_cnn())


def test_named_datasets_and_class_names():
    client = client_for(graph_cnn(), dataset="xo")
    info = client.get("/api/model").json()
    assert info["dataset"]["name"] == "xo" and info["class_names"][:2] == ["0", "1"]
    res = client.post("/api/run", json={"dataset_index": 0}).json()
    assert any("resized to 12x12" in n for n in res["notes"])  # xo images are larger
    named = client_for(graph_cnn(), class_names=["a", "b", "c", "d"]).get("/api/model").json()
    assert named["class_names"] == ["a", "b", "c", "d"]
