"""The segmentation network: noise-residual front end and a small U-Net, in plain torch.

Input: (N, 7, H, W) from :func:`~fakescope.localizers.segmentation.inputs.network_input`
(normalised RGB and the JPEG cue channels), H and W multiples of :attr:`SegmentationNet.stride`.
The front end adds two residual views of the pixels, since edits show in the noise more than in
the content:

- three fixed SRM kernels (:func:`fakescope.features.residuals.srm_kernels`) on the luma,
  truncated to +-3 grey levels as in rich-model steganalysis;
- ``bayar_filters`` learned 5x5 filters on RGB, constrained after every optimiser step as in
  Bayar and Stamm (2016/2018): centre weight -1, the others summing to 1, so each filter is a
  prediction-error filter and cannot learn image content.

All views are concatenated with the RGB and JPEG channels and go through a U-Net: ``len(widths)``
levels of two 3x3 conv + batch norm + ReLU, max pooling between levels, bilinear upsampling and
skip connections back up, and a 1x1 conv to one logit per pixel.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from fakescope.features.residuals import srm_kernels
from fakescope.localizers.layers import double_conv
from fakescope.localizers.segmentation.inputs import INPUT_CHANNELS, RGB_MEAN, RGB_SCALE

SRM_CLIP = 3.0
BAYAR_SIZE = 5
#: Luma weights (BT.601) to get grey levels from the RGB channels.
_LUMA = (0.299, 0.587, 0.114)
#: Bayar outputs are prediction errors in grey levels; this brings them near unit scale.
_BAYAR_GAIN = 1.0 / 8.0


class BayarConv(nn.Module):
    """Constrained convolution: each filter predicts the centre pixel from its neighbours."""

    def __init__(self, in_channels: int, out_channels: int, size: int = BAYAR_SIZE) -> None:
        super().__init__()
        # Positive start so that every slice sums well away from zero before rescaling.
        self.weight = nn.Parameter(torch.rand(out_channels, in_channels, size, size))
        self.constrain()

    @torch.no_grad()
    def constrain(self) -> None:
        """Per input channel of each filter: centre -1, the other 24 weights rescaled to sum 1."""
        centre = self.weight.shape[-1] // 2
        weight = self.weight.data
        weight[:, :, centre, centre] = 0.0
        sums = weight.sum(dim=(2, 3), keepdim=True)
        # A sum near zero would blow the weights up; nudge it away from zero keeping its sign.
        sums = torch.where(sums.abs() < 1e-3, torch.full_like(sums, 1e-3), sums)
        weight /= sums
        weight[:, :, centre, centre] = -1.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight, padding=self.weight.shape[-1] // 2)


class SegmentationNet(nn.Module):
    """Residual front end + U-Net; ``forward`` returns (N, 1, H, W) logits."""

    def __init__(self, widths: Sequence[int], bayar_filters: int) -> None:
        super().__init__()
        if not widths:
            raise ValueError("widths must name at least one level")
        self.register_buffer("srm", torch.from_numpy(srm_kernels()).unsqueeze(1))
        self.register_buffer("luma", torch.tensor(_LUMA).view(1, 3, 1, 1))
        self.bayar = BayarConv(3, bayar_filters) if bayar_filters > 0 else None
        in_channels = INPUT_CHANNELS + self.srm.shape[0] + bayar_filters
        self.encoders = nn.ModuleList()
        for width in widths:
            self.encoders.append(double_conv(in_channels, width))
            in_channels = width
        self.decoders = nn.ModuleList(
            double_conv(widths[level + 1] + widths[level], widths[level])
            for level in reversed(range(len(widths) - 1))
        )
        self.head = nn.Conv2d(widths[0], 1, 1)
        self.stride = 2 ** (len(widths) - 1)

    def residual_views(self, x: torch.Tensor) -> list[torch.Tensor]:
        """SRM residuals of the luma and Bayar residuals of RGB, from the network input."""
        grey_levels = (x[:, :3] * RGB_SCALE + RGB_MEAN) * 255.0
        luma = (grey_levels * self.luma).sum(dim=1, keepdim=True)
        srm = F.conv2d(luma, self.srm, padding=self.srm.shape[-1] // 2)
        views = [srm.clamp(-SRM_CLIP, SRM_CLIP) / SRM_CLIP]
        if self.bayar is not None:
            views.append(self.bayar(grey_levels) * _BAYAR_GAIN)
        return views

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = torch.cat([x, *self.residual_views(x)], dim=1)
        skips = []
        for level, encoder in enumerate(self.encoders):
            if level > 0:
                features = F.max_pool2d(features, 2)
            features = encoder(features)
            skips.append(features)
        for decoder, skip in zip(self.decoders, reversed(skips[:-1]), strict=True):
            features = F.interpolate(
                features, size=skip.shape[-2:], mode="bilinear", align_corners=False
            )
            features = decoder(torch.cat([features, skip], dim=1))
        return self.head(features)

    def constrain(self) -> None:
        """Re-impose the Bayar constraint (call after every optimiser step)."""
        if self.bayar is not None:
            self.bayar.constrain()
