"""slidenet.ops: the math of a CNN as pure NumPy functions.

Notation (the lectures' letters)::

    N  batch size            H, W  input height, width     D  input depth (channels)
    K  number of filters     Fh, Fw  filter extent         sh, sw  strides   dh, dw  dilation
    pt, pb, pl, pr  zero padding at top, bottom, left, right
    Ho = (H - Fh_eff + pt + pb) / sh + 1,  Fh_eff = (Fh - 1) * dh + 1  (Wo likewise)
    x (N, H, W, D) input   w (Fh, Fw, D, K) filters   b (K,) biases   y (N, Ho, Wo, K) output
    dy, dx, dw, db  gradients of the loss with respect to y, x, w, b

Every op comes as ``name_forward(...) -> (y, cache)`` and ``name_backward(dy, cache) -> grads``,
and a plain ``name(...) -> y``. Ops never modify their inputs and keep the input's dtype (float32
or float64). :mod:`slidenet.ops.reference` holds the same math as textbook loops, and
:mod:`slidenet.ops.winograd` the fast form of 3x3 and 5x5 stride-1 convolutions
(``conv2d_forward(..., algorithm="winograd")``).
"""

from slidenet.ops.activations import (
    relu,
    relu_backward,
    relu_forward,
    sigmoid,
    sigmoid_backward,
    sigmoid_forward,
    softmax,
    softmax_backward,
    softmax_forward,
    tanh,
    tanh_backward,
    tanh_forward,
)

# The plain public ops check their arguments (lists, dtypes, empty windows) before the math.
from slidenet.ops.checked import (
    avg_pool1d,
    avg_pool2d,
    conv1d,
    conv2d,
    dense,
    global_avg_pool,
    global_max_pool,
    max_pool1d,
    max_pool2d,
    sum_pool2d,
)
from slidenet.ops.conv import (
    conv1d_backward,
    conv1d_forward,
    conv2d_backward,
    conv2d_forward,
)
from slidenet.ops.dense import dense_backward, dense_forward
from slidenet.ops.dropout import dropout_backward, dropout_forward
from slidenet.ops.losses import (
    binary_cross_entropy,
    cross_entropy,
    mean_squared_error,
    sigmoid_binary_cross_entropy,
    softmax_cross_entropy,
)
from slidenet.ops.merge import (
    add_backward,
    add_forward,
    average_backward,
    average_forward,
    concatenate_backward,
    concatenate_forward,
    maximum_backward,
    maximum_forward,
    minimum_backward,
    minimum_forward,
    multiply_backward,
    multiply_forward,
    subtract_backward,
    subtract_forward,
)
from slidenet.ops.normalization import batchnorm_backward, batchnorm_forward, batchnorm_inference
from slidenet.ops.pool import (
    avg_pool1d_backward,
    avg_pool1d_forward,
    avg_pool2d_backward,
    avg_pool2d_forward,
    global_pool_backward,
    global_pool_forward,
    max_pool1d_backward,
    max_pool1d_forward,
    max_pool2d_backward,
    max_pool2d_forward,
    pool1d_backward,
    pool1d_forward,
    pool2d_backward,
    pool2d_forward,
    sum_pool2d_backward,
    sum_pool2d_forward,
)
from slidenet.ops.shapes import conv_output_length

__all__ = [
    "dense",
    "dense_backward",
    "dense_forward",
    "dropout_backward",
    "dropout_forward",
    "batchnorm_backward",
    "batchnorm_forward",
    "batchnorm_inference",
    "relu",
    "relu_backward",
    "relu_forward",
    "sigmoid",
    "sigmoid_backward",
    "sigmoid_forward",
    "softmax",
    "softmax_backward",
    "softmax_forward",
    "tanh",
    "tanh_backward",
    "tanh_forward",
    "conv1d",
    "conv1d_backward",
    "conv1d_forward",
    "conv2d",
    "conv2d_backward",
    "conv2d_forward",
    "binary_cross_entropy",
    "cross_entropy",
    "mean_squared_error",
    "sigmoid_binary_cross_entropy",
    "softmax_cross_entropy",
    "avg_pool1d",
    "avg_pool1d_backward",
    "avg_pool1d_forward",
    "avg_pool2d",
    "avg_pool2d_backward",
    "avg_pool2d_forward",
    "global_avg_pool",
    "global_max_pool",
    "global_pool_backward",
    "global_pool_forward",
    "max_pool1d",
    "max_pool1d_backward",
    "max_pool1d_forward",
    "max_pool2d",
    "max_pool2d_backward",
    "max_pool2d_forward",
    "pool1d_backward",
    "pool1d_forward",
    "pool2d_backward",
    "pool2d_forward",
    "sum_pool2d",
    "sum_pool2d_backward",
    "sum_pool2d_forward",
    "conv_output_length",
    "add_backward",
    "add_forward",
    "average_backward",
    "average_forward",
    "concatenate_backward",
    "concatenate_forward",
    "maximum_backward",
    "maximum_forward",
    "minimum_backward",
    "minimum_forward",
    "multiply_backward",
    "multiply_forward",
    "subtract_backward",
    "subtract_forward",
]
