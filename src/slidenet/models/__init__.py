"""Models: Sequential, Model (graphs and subclasses), and model files (save / load_model)."""

from slidenet.models.functional import Model
from slidenet.models.saving import ModelFileError, load_model, save_model
from slidenet.models.sequential import Sequential

__all__ = ["Model", "Sequential", "load_model", "save_model", "ModelFileError"]
