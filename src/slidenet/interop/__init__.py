"""slidenet.interop: exchange models with other frameworks through ONNX (the ``onnx`` extra).

* ``export_onnx(model, path, opset=17)`` (also ``Sequential.export_onnx(path)``) writes a
  Sequential or a functional Model (branches, merge layers, several inputs and outputs, shared
  layers, nested Models) as a graph whose inputs and outputs are channels-last, the arrays
  ``model.predict`` takes and returns. Every layer of ``slidenet.layers.LAYER_CLASSES`` exports
  (dropout and the augmentation layers as their inference forms); the operators are listed in
  ``onnx_export`` and ``_export_more``.
* ``import_onnx(path)`` reads a DAG of Conv, ConvTranspose, pooling, Gemm/MatMul, activations
  (Relu, Sigmoid, Tanh, Softmax, LeakyRelu, Elu, Selu, Softplus, HardSigmoid, PRelu),
  Flatten/Reshape, Pad, Resize, BatchNormalization, Add/Sum/Sub/Mul/Max/Min/Mean/Concat and ResNet
  basic blocks, converting NCHW weights and layouts to slidenet's NHWC: a ``Sequential`` for a
  chain, a ``Model`` otherwise. The imported model takes NHWC arrays.

Importing this package does not import onnx; the functions do, and say how to install it.
"""

from slidenet.interop._common import OnnxFileError, UnsupportedOnnxError
from slidenet.interop.onnx_export import export_onnx, to_onnx
from slidenet.interop.onnx_import import import_onnx

__all__ = ["export_onnx", "import_onnx", "to_onnx", "OnnxFileError", "UnsupportedOnnxError"]
