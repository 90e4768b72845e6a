"""Torch building blocks shared by the localizers' networks (imports torch: load lazily)."""

from __future__ import annotations

from torch import nn


def double_conv(in_channels: int, out_channels: int) -> nn.Sequential:
    """Two 3x3 convolutions, each with batch norm and ReLU: one U-Net level.

    Saved weights name its layers ``0`` to ``5``; keep the order.
    """
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
        nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )
