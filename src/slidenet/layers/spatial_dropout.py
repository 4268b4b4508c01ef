"""SpatialDropout1D/2D/3D: dropout of whole feature maps (Keras 3's names and arguments).

Neighbouring cells of a feature map are strongly correlated, so dropping single cells hardly
regularises a convolutional network. Spatial dropout drops a whole channel of an example instead:
in training, channel d of example n is zeroed with probability ``rate`` and otherwise scaled by
1 / (1 - rate) (one draw per (n, d), shared by every position); at inference it is the identity.
The mask is Dropout's (:func:`slidenet.ops.dropout_forward`) drawn with the noise shape
(N, 1, ..., 1, D) and broadcast over the positions; the backward pass is dy * mask.
"""

from __future__ import annotations

import numpy as np

from slidenet.layers.core import Dropout
from slidenet.ops.dropout import dropout_forward

_LAYOUTS = {1: "(L, D)", 2: "(H, W, D)", 3: "(Z, H, W, D)"}


class _SpatialDropout(Dropout):
    """Dropout of whole channels; ``self.rng`` (seeded by ``seed``) draws the masks and is saved
    with the model, like Dropout's."""

    rank = 2

    def compute_output_shape(self, input_shape):
        self._expect_rank(
            input_shape,
            self.rank + 1,
            _LAYOUTS[self.rank],
            "Spatial dropout drops channels: each example needs a channel axis last.",
        )
        return tuple(input_shape)

    def forward(self, x, training=False):
        self._mask = None
        if not training or self.rate == 0:
            return x
        noise_shape = (x.shape[0], *(1,) * self.rank, x.shape[-1])
        _, self._mask = dropout_forward(np.ones(noise_shape, x.dtype), self.rate, self.rng)
        return x * self._mask


class SpatialDropout1D(_SpatialDropout):
    """Drops whole channels of signals (N, L, D): one draw per example and channel."""

    rank = 1


class SpatialDropout2D(_SpatialDropout):
    """Drops whole feature maps of images (N, H, W, D): one draw per example and channel."""


class SpatialDropout3D(_SpatialDropout):
    """Drops whole feature maps of volumes (N, Z, H, W, D): one draw per example and channel."""

    rank = 3
