"""The explorer behind the JSON API: runs an image through the model, keeps the run, answers units.

Activations travel quantised: each column's output is mapped linearly from its range [lo, hi]
(one range per layer, so all of a layer's maps share one colour scale) to bytes 0..255,
``q = round((v - lo) / (hi - lo) * 255)``, sent base64-encoded in NHWC order (index
``(y * W + x) * C + c``; for vectors the unit index). ``v = lo + q / 255 * (hi - lo)`` recovers
a value within (hi - lo) / 510; the exact numbers of a unit come from ``/api/unit``.

Runs are kept in a bounded LRU cache (:data:`MAX_RUNS` runs) keyed by a random run id, so that
``/api/unit`` answers from the same forward pass the page shows.
"""

from __future__ import annotations

import base64
import secrets
import threading
import time
from collections import OrderedDict

import numpy as np

from slidenet.explore import units
from slidenet.explore.inputs import MAX_UPLOAD_BYTES, InputError, decode_image, resolve_dataset
from slidenet.explore.network import Network
from slidenet.utils.image_input import output_probabilities, to_model_input

__all__ = ["MAX_RUNS", "Explorer", "quantise"]

MAX_RUNS = 64


def quantise(values: np.ndarray) -> dict:
    """{"range": [lo, hi], "data": base64 of uint8 q} for one column's output (see the module)."""
    v = np.asarray(values, dtype=np.float64)
    finite = v[np.isfinite(v)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)
    scale = 255.0 / (hi - lo) if hi > lo else 0.0
    q = np.clip(np.round((np.nan_to_num(v, nan=lo) - lo) * scale), 0, 255).astype(np.uint8)
    return {"range": [lo, hi], "data": base64.b64encode(q.tobytes()).decode("ascii")}


class Explorer:
    """A model, an optional data set, and the recent runs.

    Args:
        model: a built Sequential or functional Model (one image input, class scores out).
        dataset: see :func:`slidenet.explore.inputs.resolve_dataset`.
        class_names: names of the classes (default: the data set's, else "0", "1", ...).
        max_runs: how many runs the LRU cache keeps.
    """

    def __init__(self, model, dataset=None, class_names=None, max_runs: int = MAX_RUNS):
        self.network = Network(model)
        self.data = resolve_dataset(dataset)
        outputs = self.network.columns[-1].shape[0]
        n_classes = 2 if outputs == 1 else outputs
        names = list(class_names) if class_names is not None else None
        if names is None and self.data is not None and self.data.class_names:
            names = list(self.data.class_names)
        if names is None or len(names) != n_classes:
            names = [str(i) for i in range(n_classes)]
        self.class_names = [str(n) for n in names]
        self.max_runs = int(max_runs)
        self._runs: OrderedDict[str, dict] = OrderedDict()
        self._lock = threading.Lock()
        self.network.forward(np.zeros(self.network.input_shape, np.float32))  # warm-up (JIT)

    # ----- describing ---------------------------------------------------------------------------
    def info(self) -> dict:
        """The model's columns, the class names and the data set (``GET /api/model``)."""
        net = self.network
        columns = []
        for column in net.columns:
            entry = column.describe()
            entry["inputs"] = [net.columns[i].name for i in column.inputs]
            columns.append(entry)
        data = None
        if self.data is not None:
            data = {
                "name": self.data.name,
                "count": len(self.data.x),
                "examples": self.data.examples(),
            }
        return {
            "model": self.network.model.name,
            "graph": net.graph,
            "input_shape": list(net.input_shape),
            "columns": columns,
            "class_names": self.class_names,
            "dataset": data,
            "max_upload_bytes": MAX_UPLOAD_BYTES,
        }

    # ----- running --------------------------------------------------------------------------------
    def run_image(self, data: bytes, invert: bool = False) -> dict:
        """Decode image bytes, prepare them as ``slidenet predict`` does, and run them
        (``POST /api/run``)."""
        start = time.perf_counter()
        image = decode_image(data, self.network.input_shape[-1])
        x, notes = to_model_input(image, self.network.input_shape, invert, name="the image")
        notes = [n.replace("need --invert", "need 'invert'") for n in notes]
        return self._run(x, notes, start)

    def run_index(self, index, invert: bool = False) -> dict:
        """Run test image number ``index`` of the data set (``{"dataset_index": i}``)."""
        start = time.perf_counter()
        if self.data is None:
            raise InputError("no data set is loaded; start explore with --dataset NAME", 400)
        image, label = self.data.image(index)
        x, notes = to_model_input(image, self.network.input_shape, invert, name="the image")
        notes = [n for n in notes if "mostly light" not in n]  # the data set's own convention
        return self._run(x, notes, start, source={"dataset_index": int(index), "label": label})

    def _run(self, x, notes, start, source=None) -> dict:
        values = self.network.forward(x)
        probs, more = output_probabilities(values[-1][None])
        probs = probs[0]
        run_id = secrets.token_hex(8)
        with self._lock:
            self._runs[run_id] = {"values": values}
            while len(self._runs) > self.max_runs:
                self._runs.popitem(last=False)
        layers = []
        for column, value in zip(self.network.columns, values, strict=True):
            layers.append({"name": column.name, "shape": list(value.shape), **quantise(value)})
        predicted = int(np.argmax(probs))
        return {
            "run": run_id,
            "layers": layers,
            "probabilities": [float(p) for p in probs],
            "predicted": predicted,
            "predicted_name": self.class_names[predicted],
            "class_names": self.class_names,
            "source": source or {"upload": True},
            "notes": notes + more,
            "server_ms": round(1000 * (time.perf_counter() - start), 2),
        }

    def values(self, run_id: str) -> list[np.ndarray]:
        """The column outputs of a cached run (InputError 404 when unknown or evicted)."""
        with self._lock:
            run = self._runs.get(run_id)
            if run is not None:
                self._runs.move_to_end(run_id)
        if run is None:
            raise InputError(
                f"run {run_id!r} is not in the cache (it keeps the last {self.max_runs} runs); "
                "run the image again",
                404,
            )
        return run["values"]

    # ----- one unit -------------------------------------------------------------------------------
    def unit(self, run_id: str, layer: str, y=None, x=None, k=None) -> dict:
        """The panel of one unit (``GET /api/unit``); y, x are omitted for vector columns."""
        values = self.values(run_id)
        net = self.network
        if layer not in net.index:
            raise InputError(
                f"no layer named {layer!r}; the layers are {', '.join(net.index)}", 404
            )
        index = net.index[layer]
        column = net.columns[index]
        shape = column.shape
        k = 0 if k is None else k
        if len(shape) == 1:
            _check("k", k, shape[0])
            if column.kind == "dense":
                return units.dense_unit(net, index, values, k)
            return units.other_unit(net, index, values, k=k)
        if y is None or x is None:
            raise InputError(f"layer {layer!r} has maps {shape}: give y, x and k")
        for name, v, n in (("y", y, shape[0]), ("x", x, shape[1]), ("k", k, shape[2])):
            _check(name, v, n)
        if column.kind == "conv":
            return units.conv_unit(net, index, values, y, x, k)
        if column.kind == "pool":
            return units.pool_unit(net, index, values, y, x, k)
        return units.other_unit(net, index, values, y, x, k)


def _check(name: str, value, size: int) -> None:
    if not 0 <= value < size:
        raise InputError(f"{name}={value} is out of range 0..{size - 1}")
