"""Utilities: seeding, label encoding, gradient checking, IDX files, model diagrams."""

from slidenet.utils.categorical import to_categorical
from slidenet.utils.gradcheck import gradcheck
from slidenet.utils.image_dataset import image_dataset_from_directory
from slidenet.utils.plot_model import model_to_dot, plot_model
from slidenet.utils.random import set_random_seed


def read_idx(path):
    """Read an IDX file (gz or raw) with full header validation; see slidenet.datasets.utils."""
    from slidenet.datasets.utils import read_idx as _read_idx

    return _read_idx(path)


__all__ = [
    "set_random_seed",
    "to_categorical",
    "gradcheck",
    "read_idx",
    "plot_model",
    "model_to_dot",
    "image_dataset_from_directory",
]
