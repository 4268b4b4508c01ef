"""One seeded source of randomness for the whole library.

``set_random_seed(seed)`` reseeds it (and Python's and NumPy's legacy global generators, as Keras
does), so that initial weights, shuffling and dropout masks repeat bit for bit.
"""

from __future__ import annotations

import random as _py_random

import numpy as np

_generator = np.random.default_rng()


def set_random_seed(seed: int) -> None:
    """Seed slidenet's generator, Python's ``random`` and ``np.random`` for repeatable runs.

    >>> set_random_seed(0); a = global_generator().random()
    >>> set_random_seed(0); a == global_generator().random()
    True
    """
    global _generator
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"set_random_seed: seed must be an int >= 0, got {seed!r}.")
    _generator = np.random.default_rng(int(seed))
    _py_random.seed(int(seed))
    np.random.seed(int(seed) % 2**32)  # noqa: NPY002 - Keras seeds the legacy generator too


def global_generator() -> np.random.Generator:
    """The generator initializers draw from when they have no seed of their own."""
    return _generator


def spawn_generator(seed: int | None = None) -> np.random.Generator:
    """A new independent generator: from ``seed`` when given, else drawn from the global one."""
    if seed is None:
        seed = int(_generator.integers(2**63))
    elif isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer or None, got {seed!r}.")
    return np.random.default_rng(seed)


def generator_state(rng: np.random.Generator) -> dict:
    """The JSON-serialisable state of a generator (for model files)."""
    return rng.bit_generator.state


def generator_from_state(state: dict) -> np.random.Generator:
    """Rebuild a generator from :func:`generator_state` output."""
    name = state["bit_generator"]
    if name != "PCG64":
        raise ValueError(f"unsupported random generator {name!r} in saved state (expected PCG64).")
    bitgen = np.random.PCG64()
    bitgen.state = state
    return np.random.Generator(bitgen)
