"""Every layer class survives a model file: save then load_model gives the same predictions and
weights (the contract's cases; merge layers in a graph model)."""

import numpy as np
import pytest
from test_layer_contract import CASES, make_input

import slidenet as keras
from slidenet import layers as L


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_layer_round_trips_through_a_model_file(case, tmp_path):
    keras.utils.set_random_seed(0)
    x = make_input(case)
    layer = case.make()
    if isinstance(layer, L.InputLayer):
        return  # an Input is the model's shape, not a layer of it
    model = keras.Sequential([L.Input(x.shape[1:]), layer])
    model.compile("adam", "mse")
    model.save(tmp_path / "m.slidenet")
    loaded = keras.load_model(tmp_path / "m.slidenet")
    assert [type(lay).__name__ for lay in loaded.layers] == [type(layer).__name__]
    assert loaded.layers[0].get_config() == layer.get_config()
    for a, b in zip(loaded.get_weights(), model.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


@pytest.mark.parametrize("name", ["Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum"])
def test_merge_layers_round_trip_in_a_graph(name, tmp_path):
    a, b = keras.Input((3, 4)), keras.Input((3, 4))
    merged = getattr(L, name)()([L.Dense(4)(a), b])
    joined = L.Concatenate(axis=1)([merged, a])
    model = keras.Model([a, b], joined)
    model.save(tmp_path / "g.slidenet")
    loaded = keras.load_model(tmp_path / "g.slidenet")
    xs = [np.random.default_rng(i).normal(size=(2, 3, 4)).astype("float32") for i in range(2)]
    np.testing.assert_array_equal(loaded.predict(xs), model.predict(xs))
