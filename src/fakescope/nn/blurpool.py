"""Anti-aliased downsampling: BlurPool (R. Zhang, *Making Convolutional Networks Shift-Invariant
Again*, ICML 2019).

A stride-2 layer samples every other pixel, which aliases: a one-pixel shift of the input can
change the output a lot. Zhang's fix keeps the layer dense (stride 1), then low-pass filters
with a fixed binomial kernel before subsampling. For artefact detectors this matters twice: the
verdict should not depend on where a crop starts, and the generator traces being looked for are
themselves high-frequency, so the network should not fold them into aliases at random phases.

The kernel has no learnable parameters and is a *non-persistent* buffer: inserting BlurPool into
a network leaves its ``state_dict`` unchanged, so weights of the plain network still load.
"""

from __future__ import annotations

from math import comb

import torch
import torch.nn.functional as F
from torch import nn

from fakescope.nn import MAX_FILTER_SIZE


def binomial_kernel(size: int) -> torch.Tensor:
    """The normalised 2-D binomial filter of side ``size`` ([1, 2, 1] for 3, [1, 3, 3, 1] for 4)."""
    if not 1 <= size <= MAX_FILTER_SIZE:
        raise ValueError(f"filter size must be in 1..{MAX_FILTER_SIZE}, got {size}")
    row = torch.tensor([comb(size - 1, k) for k in range(size)], dtype=torch.float64)
    kernel = torch.outer(row, row)
    return (kernel / kernel.sum()).float()


class BlurPool2d(nn.Module):
    """Depthwise binomial low-pass then subsampling by ``stride``; no learnable parameters.

    The output has ``ceil(H / stride)`` rows, like a strided 3x3 convolution with padding 1, so
    it can replace the stride of such a convolution without changing any shape downstream.
    Zhang found size 3 ([1, 2, 1]) a good trade-off between shift-invariance and sharpness; size
    4 ([1, 3, 3, 1]) and 5 blur more and are more shift-invariant.
    """

    def __init__(self, channels: int, filter_size: int = 3, stride: int = 2) -> None:
        super().__init__()
        if channels < 1 or stride < 1:
            raise ValueError(f"channels and stride must be positive, got {channels}, {stride}")
        self.channels = channels
        self.filter_size = filter_size
        self.stride = stride
        # Zhang's padding: (size - 1) split with the extra pixel at the end for even sizes.
        self.pad_before = (filter_size - 1) // 2
        self.pad_after = filter_size - 1 - self.pad_before
        kernel = binomial_kernel(filter_size).expand(channels, 1, filter_size, filter_size)
        # Non-persistent: the state dict stays that of the network without BlurPool.
        self.register_buffer("kernel", kernel.contiguous(), persistent=False)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, filter_size={self.filter_size}, stride={self.stride}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.filter_size == 1:
            return x[:, :, :: self.stride, :: self.stride]
        pads = (self.pad_before, self.pad_after, self.pad_before, self.pad_after)
        # Reflection (Zhang's choice) avoids darkening borders, but needs the input larger than
        # the pad; deep layers of a network fed a tiny crop can be 1-2 pixels wide.
        mode = "reflect" if min(x.shape[-2:]) > self.pad_after else "replicate"
        padded = F.pad(x, pads, mode=mode)
        return F.conv2d(padded, self.kernel.to(x.dtype), stride=self.stride, groups=self.channels)
