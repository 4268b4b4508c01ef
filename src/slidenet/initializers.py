"""Weight initializers (Keras names): He for ReLU nets, Glorot (Xavier) for tanh/sigmoid/linear.

For a kernel of shape (Fh, Fw, D, K) the fans are fan_in = Fh*Fw*D and fan_out = Fh*Fw*K; for a
dense
kernel (D_in, units) they are D_in and units.

    he_normal       truncated normal, std sqrt(2 / fan_in)        (He et al. 2015)
    he_uniform      uniform(-limit, limit), limit sqrt(6 / fan_in)
    glorot_normal   truncated normal, std sqrt(2 / (fan_in + fan_out))   (Glorot & Bengio 2010)
    glorot_uniform  uniform, limit sqrt(6 / (fan_in + fan_out))
Truncated normals redraw values beyond two standard deviations; as in Keras, the std is divided by
0.8796 so the truncated distribution keeps the intended variance.
"""

from __future__ import annotations

import numpy as np

from slidenet._validation import unknown_name
from slidenet.utils.random import global_generator

_TRUNC_STD = 0.87962566103423978


def compute_fans(shape) -> tuple[int, int]:
    """(fan_in, fan_out) of a weight shape: (D_in, units) or (*kernel, D, K)."""
    if len(shape) < 2:
        return int(np.prod(shape)), int(np.prod(shape))
    receptive = int(np.prod(shape[:-2]))
    return receptive * shape[-2], receptive * shape[-1]


class Initializer:
    """Base class: ``init(shape, dtype) -> array``; draws from seed or the global generator."""

    def __init__(self, seed=None):
        self.seed = seed

    def _rng(self):
        return np.random.default_rng(self.seed) if self.seed is not None else global_generator()

    def __call__(self, shape, dtype="float32"):
        raise NotImplementedError

    def get_config(self):
        return {"seed": self.seed}


class Zeros(Initializer):
    """All zeros."""

    def __call__(self, shape, dtype="float32"):
        return np.zeros(shape, dtype)


class Ones(Initializer):
    """All ones."""

    def __call__(self, shape, dtype="float32"):
        return np.ones(shape, dtype)


class _VarianceScaling(Initializer):
    scale = 1.0
    fan = "fan_in"
    distribution = "uniform"

    def __call__(self, shape, dtype="float32"):
        fan_in, fan_out = compute_fans(shape)
        n = {"fan_in": fan_in, "fan_avg": (fan_in + fan_out) / 2}[self.fan]
        variance = self.scale / max(1.0, n)
        rng = self._rng()
        if self.distribution == "uniform":
            limit = np.sqrt(3 * variance)
            return rng.uniform(-limit, limit, size=shape).astype(dtype)
        std = np.sqrt(variance) / _TRUNC_STD
        values = rng.standard_normal(size=shape)
        bad = np.abs(values) > 2
        while bad.any():
            values[bad] = rng.standard_normal(size=int(bad.sum()))
            bad = np.abs(values) > 2
        return (values * std).astype(dtype)


class HeNormal(_VarianceScaling):
    """Truncated normal with std sqrt(2 / fan_in)."""

    scale, fan, distribution = 2.0, "fan_in", "normal"


class HeUniform(_VarianceScaling):
    """Uniform in +-sqrt(6 / fan_in)."""

    scale, fan, distribution = 2.0, "fan_in", "uniform"


class GlorotNormal(_VarianceScaling):
    """Truncated normal with std sqrt(2 / (fan_in + fan_out))."""

    scale, fan, distribution = 1.0, "fan_avg", "normal"


class GlorotUniform(_VarianceScaling):
    """Uniform in +-sqrt(6 / (fan_in + fan_out))."""

    scale, fan, distribution = 1.0, "fan_avg", "uniform"


_BY_NAME = {
    "zeros": Zeros,
    "ones": Ones,
    "he_normal": HeNormal,
    "he_uniform": HeUniform,
    "glorot_normal": GlorotNormal,
    "glorot_uniform": GlorotUniform,
}


def get(identifier) -> Initializer:
    """An initializer from a name ('he_normal'), an Initializer, a class, or a callable(shape,
    dtype).
    """
    if (
        isinstance(identifier, Initializer)
        or callable(identifier)
        and not isinstance(identifier, type)
    ):
        return identifier
    if isinstance(identifier, type) and issubclass(identifier, Initializer):
        return identifier()
    if isinstance(identifier, str):
        key = identifier.lower()
        if key in _BY_NAME:
            return _BY_NAME[key]()
        raise unknown_name("initializer", identifier, _BY_NAME)
    raise TypeError(f"initializer must be a name or an Initializer, got {identifier!r}.")


def serialize(init) -> str | dict:
    """The name of a built-in initializer (what get_config stores)."""
    for name, cls in _BY_NAME.items():
        if type(init) is cls and init.seed is None:
            return name
    for name, cls in _BY_NAME.items():
        if type(init) is cls:
            return {"class_name": name, "config": init.get_config()}
    raise ValueError(f"cannot serialise custom initializer {init!r}; use a built-in name.")


def deserialize(config):
    """Inverse of :func:`serialize`."""
    if isinstance(config, dict):
        return _BY_NAME[config["class_name"]](**config["config"])
    return get(config)
