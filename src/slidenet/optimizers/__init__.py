"""Optimizers: update weights in place from their gradients, with the papers' symbols.

Keras 3's optimizers, names, arguments and defaults: :class:`SGD`, :class:`Adam`,
:class:`AdamW`, :class:`Adamax`, :class:`Nadam`, :class:`RMSprop`, :class:`Adagrad`,
:class:`Adadelta` and :class:`Lion` (strings "sgd", "adam", "adamw", ... for ``compile``).
Every one also takes ``weight_decay`` (decoupled), ``clipnorm``, ``clipvalue`` and
``global_clipnorm`` (see :class:`Optimizer`), and a ``learning_rate`` that is a number or one of
the :mod:`~slidenet.optimizers.schedules`.

Each keeps its state (momenta) in lists parallel to the weights it is given; state is created on
the first step. ``learning_rate`` is an attribute that callbacks may change (unless it is a
schedule).

>>> from slidenet import optimizers
>>> opt = optimizers.get("adamw")
>>> type(opt).__name__, opt.learning_rate, opt.weight_decay
('AdamW', 0.001, 0.004)
"""

from __future__ import annotations

from slidenet._validation import unknown_name
from slidenet.optimizers import schedules
from slidenet.optimizers.adam import Adam, Adamax, AdamW, Nadam
from slidenet.optimizers.adaptive import Adadelta, Adagrad, RMSprop
from slidenet.optimizers.base import Optimizer
from slidenet.optimizers.sgd import SGD, Lion

_BY_NAME = {
    "sgd": SGD,
    "adam": Adam,
    "adamw": AdamW,
    "adamax": Adamax,
    "nadam": Nadam,
    "rmsprop": RMSprop,
    "adagrad": Adagrad,
    "adadelta": Adadelta,
    "lion": Lion,
}


def get(identifier) -> Optimizer:
    """An optimizer from a name ('adam'), a serialized dict or an Optimizer instance."""
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, str):
        key = identifier.lower()
        if key in _BY_NAME:
            return _BY_NAME[key]()
        raise unknown_name("optimizer", identifier, _BY_NAME)
    if isinstance(identifier, dict):
        return deserialize(identifier)
    raise TypeError(f"optimizer must be a name or an Optimizer, got {identifier!r}.")


def serialize(opt: Optimizer) -> dict:
    """``{"class_name": ..., "config": opt.get_config()}``: JSON values only (a learning rate
    schedule as its own serialized dict)."""
    return {"class_name": type(opt).__name__, "config": opt.get_config()}


def deserialize(config: dict, custom_objects=None) -> Optimizer:
    """The optimizer (without state) described by :func:`serialize`'s dict; ``custom_objects``
    ({name: class}) names classes of learning rate schedules of your own."""
    classes = {cls.__name__: cls for cls in _BY_NAME.values()}
    name = config.get("class_name")
    if name not in classes:
        raise unknown_name("optimizer class", str(name), classes)
    return classes[name].from_config(config["config"], custom_objects)


__all__ = [
    "SGD",
    "Adadelta",
    "Adagrad",
    "Adam",
    "AdamW",
    "Adamax",
    "Lion",
    "Nadam",
    "Optimizer",
    "RMSprop",
    "deserialize",
    "get",
    "schedules",
    "serialize",
]
