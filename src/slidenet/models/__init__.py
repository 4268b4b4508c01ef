"""Models: Sequential, and model files (save / load_model)."""

from slidenet.models.saving import ModelFileError, load_model, save_model
from slidenet.models.sequential import Sequential

__all__ = ["Sequential", "load_model", "save_model", "ModelFileError"]
