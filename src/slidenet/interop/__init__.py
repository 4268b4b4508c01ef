"""slidenet.interop: exchange models with other frameworks through ONNX (the ``onnx`` extra).

* ``export_onnx(model, path, opset=17)`` (also ``model.export_onnx(path)``) writes a graph whose
  input and output are channels-last, the arrays ``model.predict`` takes and returns.
* ``import_onnx(path) -> Sequential`` reads a chain of Conv, pooling, Gemm/MatMul, activations,
  Flatten/Reshape, BatchNormalization and ResNet basic blocks (Add), converting NCHW weights and
  layouts to slidenet's NHWC. The imported model takes NHWC arrays.

Importing this package does not import onnx; the functions do, and say how to install it.
"""

from slidenet.interop._common import OnnxFileError, UnsupportedOnnxError
from slidenet.interop.onnx_export import export_onnx, to_onnx
from slidenet.interop.onnx_import import import_onnx

__all__ = ["export_onnx", "import_onnx", "to_onnx", "OnnxFileError", "UnsupportedOnnxError"]
