"""The NPR network: the neighbouring-pixel-relation residual, then a small residual CNN.

Imported only when a network is built, so that the registry and ``get_params`` work without
torch. Every op here exports to ONNX opset 17 (slicing, nearest ``Resize``, convolutions).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def even_crop(x: torch.Tensor) -> torch.Tensor:
    """Drop the last row/column of an odd side, so 2x2 cells tile the image exactly.

    Written as slicing with sizes read from the tensor, so an ONNX export with dynamic height
    and width keeps working for any side.
    """
    height = x.shape[-2] // 2 * 2
    width = x.shape[-1] // 2 * 2
    return x[..., :height, :width]


def npr_residual(x: torch.Tensor) -> torch.Tensor:
    """``x - up(down(x))`` with 2x nearest down- and upsampling (Tan et al. 2024, eq. 3).

    ``down`` keeps the top-left pixel of every 2x2 cell (what nearest interpolation with factor
    0.5 does), ``up`` repeats it over the cell; the residual is each pixel minus its cell's
    anchor. An image made by 2x nearest (or similar) upsampling is constant on cells, so its
    residual is zero; real sensors and most generators' upsampling layers leave other,
    distinguishable local correlations. Odd sides are cropped to even first.
    """
    x = even_crop(x)
    anchors = x[..., ::2, ::2]
    return x - F.interpolate(anchors, scale_factor=2.0, mode="nearest")


#: Gain on the residual before the CNN. Residuals of photos are a few grey levels (2/255 each in
#: normalised units): times 16, eight grey levels become 1. Without it the first batch norm's
#: running variance (initialised at 1) takes hundreds of steps to shrink to the true ~1e-3, and
#: a briefly trained network sees near-zero inputs in eval mode. (NPR scales by 2/3.)
RESIDUAL_GAIN = 16.0


class BasicBlock(nn.Module):
    """ResNet basic block: two 3x3 convolutions with batch norm, and a projected shortcut."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class SmallResNet(nn.Module):
    """Strided stem + max pool (1/4 resolution, as NPR's truncated ResNet), then ``stages``
    basic blocks doubling the width and halving the resolution after the first, then global
    average pooling. Output: (N, ``out_channels``) features.
    """

    def __init__(self, in_channels: int, width: int, stages: int, pool_stem: bool = True) -> None:
        super().__init__()
        stem: list[nn.Module] = [
            nn.Conv2d(in_channels, width, 3, 2, 1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
        ]
        if pool_stem:
            stem.append(nn.MaxPool2d(3, 2, 1))
        self.stem = nn.Sequential(*stem)
        blocks: list[nn.Module] = []
        channels = width
        for stage in range(stages):
            out_channels = width * 2**stage
            blocks.append(BasicBlock(channels, out_channels, stride=1 if stage == 0 else 2))
            channels = out_channels
        self.blocks = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.out_channels = channels
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.pool(self.blocks(self.stem(x))), 1)


class NPRNetwork(nn.Module):
    """Normalised (N, 3, H, W) -> (N,) logits of *fake*; H and W may vary (cropped to even)."""

    def __init__(self, width: int = 32, stages: int = 3) -> None:
        super().__init__()
        self.features = SmallResNet(3, width, stages)
        self.head = nn.Linear(self.features.out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(npr_residual(x) * RESIDUAL_GAIN))[:, 0]
