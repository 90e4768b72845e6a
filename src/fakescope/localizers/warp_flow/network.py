"""The flow network: input features and a small U-Net predicting a local warp's flow.

A warp moves content but not the JPEG 8x8 block grid the photo was born with... except that it
does: the grid is part of the pixels, so a warp displaces it with the content. Where the flow is
``f``, the block boundaries of the forged image sit at ``x + f_x = 0 (mod 8)`` instead of
``x = 0 (mod 8)``. That shift is the strongest cue to the flow on JPEG-born photos, and a plain
CNN cannot read it: convolutions are translation-equivariant and do not know where the grid
*should* be. So the input carries it explicitly (:func:`flow_features`):

- RGB, centred and scaled to about [-1, 1];
- a high-pass residual of the luma (the image minus its 3x3 mean), which keeps the block edges
  and the blur a bilinear warp leaves, without the content;
- the *demodulated block grid*: the high-passed absolute horizontal (vertical) pixel differences
  multiplied by ``cos`` and ``sin`` of ``2 pi (x + 1) / 8`` (``y`` for vertical). Smoothed
  locally, their angle is ``-2 pi f_x / 8`` (mod 2 pi): the flow modulo 8, which the U-Net turns
  into a flow by looking at a wide neighbourhood (a smooth warp starts from zero at the brush's
  edge, which fixes the multiple of 8);
- the four reference phase maps themselves, so the network can demodulate other periodic cues.

The reference phase is taken relative to the image's own block grid, found by
:func:`grid_offset` (the offset of the strongest blockiness), so a photo cropped off the grid
does not read as one big uniform shift.

The U-Net (:class:`FlowUNet`) rearranges 4x4 cells into channels (lossless), then has ``depth``
2x down-sampling levels (a 32x coarser bottleneck at the default depth 3, so each output pixel
sees a couple of hundred pixels around it), batch-normalised 3x3 convolutions, and three
outputs: the flow ``(dy, dx)`` in pixels and one mask logit.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from fakescope.localizers.layers import double_conv
from fakescope.localizers.warp_flow.views import (
    BLOCK,
    DIHEDRAL_VIEWS,
    check_views,
    from_view,
    merge_views,
    to_view,
)

#: Channels :func:`flow_features` returns: RGB, residual, 4 grid demodulations, 4 phase maps.
IN_CHANNELS = 12
#: Channels :func:`resampling_cues` adds when a model asks for them.
RESAMPLING_CHANNELS = 4
#: Gaussian window (px) over which the resampling cues are averaged.
RESAMPLING_SIGMA = 4.0
#: Output channels: dy, dx (pixels) and the mask logit.
OUT_CHANNELS = 3
#: The flow head's raw output is multiplied by this, so unit activations mean several pixels.
FLOW_SCALE = 4.0


def _luma(image: np.ndarray) -> np.ndarray:
    rgb = image.astype(np.float32)
    return 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]


def _box3(values: np.ndarray, axis: int | None = None) -> np.ndarray:
    """3-tap (axis given) or 3x3 mean with reflected borders."""
    padded = np.pad(values, 1, mode="reflect")
    if axis == 1:
        return (padded[1:-1, :-2] + padded[1:-1, 1:-1] + padded[1:-1, 2:]) / 3.0
    if axis == 0:
        return (padded[:-2, 1:-1] + padded[1:-1, 1:-1] + padded[2:, 1:-1]) / 3.0
    out = np.zeros_like(values)
    for dy in range(3):
        for dx in range(3):
            out += padded[dy : dy + values.shape[0], dx : dx + values.shape[1]]
    return out / 9.0


def _edge_energy(gray: np.ndarray, axis: int) -> np.ndarray:
    """|difference to the next pixel along ``axis``| minus its 3-tap local mean.

    What remains is the excess of a boundary over its neighbours: the block edge, not the
    content's texture. Same shape as ``gray`` (the last difference is repeated).
    """
    diff = np.abs(np.diff(gray, axis=axis, append=np.take(gray, [-1], axis=axis)))
    return diff - _box3(diff, axis=axis)


def grid_offset(image: np.ndarray) -> tuple[int, int]:
    """The (y, x) offset in 0..7 of the image's JPEG block grid; (0, 0) for a grid-aligned image.

    The offset is where the mean blockiness along each axis peaks; images without a grid give an
    arbitrary but harmless offset (their demodulated channels are near zero anyway).
    """
    gray = _luma(image)
    offsets = []
    for axis in (0, 1):
        energy = _edge_energy(gray, axis).mean(axis=1 - axis)
        usable = len(energy) - 1  # the repeated last difference carries no boundary
        per_phase = [energy[phase:usable:BLOCK].mean() for phase in range(BLOCK)]
        # A boundary between pixels 7 and 8 of a block sits at difference index 7.
        offsets.append((int(np.argmax(per_phase)) + 1) % BLOCK)
    return offsets[0], offsets[1]


def resampling_cues(image: np.ndarray) -> np.ndarray:
    """Float32 (RESAMPLING_CHANNELS, H, W): how a warp's interpolation reshaped the noise.

    A bilinear warp that *stretches* content (the backward flow's divergence below 0) draws
    each output pixel from a neighbourhood of fewer source pixels, so neighbouring outputs
    share their noise: the high-pass residual's lag-1 correlation rises. Where it *compresses*
    content the correlation falls. On the benchmark's calibration warps the horizontal
    correlation averaged 0.44 in stretched regions, 0.18 in compressed ones and 0.32 outside
    the warps. That sign is what a single image otherwise lacks to tell a push from its
    opposite, or a pinch from a bloat. Channels: the residual's horizontal, vertical and
    diagonal lag-1 correlations and its log variance, each over a Gaussian window of
    ``RESAMPLING_SIGMA`` px and relative to its median over the image (or tile), so the
    image's own texture does not read as a warp.
    """
    from scipy.ndimage import gaussian_filter

    gray = _luma(image)
    residual = gray - _box3(gray)
    variance = gaussian_filter(residual * residual, RESAMPLING_SIGMA) + 0.05
    right = np.roll(residual, -1, axis=1)
    below = np.roll(residual, -1, axis=0)
    diagonal = np.roll(below, -1, axis=1)
    channels = [
        gaussian_filter(residual * neighbour, RESAMPLING_SIGMA) / variance
        for neighbour in (right, below, diagonal)
    ]
    log_variance = np.log(variance)
    cues = np.stack(
        [c - np.median(c) for c in channels] + [(log_variance - np.median(log_variance)) / 2.0]
    )
    return np.clip(cues, -3.0, 3.0).astype(np.float32)


def flow_features(
    image: np.ndarray, offset: tuple[int, int] = (0, 0), resampling: bool = False
) -> np.ndarray:
    """Float32 (IN_CHANNELS [+ RESAMPLING_CHANNELS], H, W) network input for an RGB uint8
    image; no resampling of the image itself.

    ``offset`` is the block grid's (y, x) offset (:func:`grid_offset` of the whole image);
    ``resampling`` appends :func:`resampling_cues`.
    """
    height, width = image.shape[:2]
    rgb = image.astype(np.float32) / 127.5 - 1.0
    gray = _luma(image)
    residual = np.clip((gray - _box3(gray)) / 8.0, -3.0, 3.0)
    ys = np.arange(height, dtype=np.float32) - offset[0]
    xs = np.arange(width, dtype=np.float32) - offset[1]
    # The boundary between pixels 7 and 8 of a block is difference index 7: phase 0 there.
    angle_y = 2.0 * math.pi * (ys + 1.0) / BLOCK
    angle_x = 2.0 * math.pi * (xs + 1.0) / BLOCK
    energy_y = np.clip(_edge_energy(gray, 0) / 4.0, -3.0, 3.0)
    energy_x = np.clip(_edge_energy(gray, 1) / 4.0, -3.0, 3.0)
    features = np.empty((IN_CHANNELS, height, width), dtype=np.float32)
    features[0:3] = rgb.transpose(2, 0, 1)
    features[3] = residual
    features[4] = energy_x * np.cos(angle_x)[None, :]
    features[5] = energy_x * np.sin(angle_x)[None, :]
    features[6] = energy_y * np.cos(angle_y)[:, None]
    features[7] = energy_y * np.sin(angle_y)[:, None]
    features[8] = np.broadcast_to(np.cos(angle_x)[None, :], (height, width))
    features[9] = np.broadcast_to(np.sin(angle_x)[None, :], (height, width))
    features[10] = np.broadcast_to(np.cos(angle_y)[:, None], (height, width))
    features[11] = np.broadcast_to(np.sin(angle_y)[:, None], (height, width))
    if resampling:
        return np.concatenate([features, resampling_cues(image)])
    return features


class _Block(nn.Module):
    """Two 3x3 convolutions with batch norm and ReLU."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.layers = double_conv(in_channels, out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class FlowUNet(nn.Module):
    """U-Net at 1/``cell`` resolution; output (N, 3, H, W) at full resolution.

    The input is first rearranged losslessly into ``cell`` x ``cell`` cells (pixel unshuffle:
    every pixel kept, none interpolated), so the network works on a 16x smaller grid at the
    default ``cell`` 4: a warp's flow is smooth over tens of pixels, and the fine detail the cues
    live in is still there, in the channels. ``depth`` 2x levels of ``width * 2**level``
    channels follow; the 3-channel output is upsampled bilinearly to the input's size.
    Channels 0-1 are the flow (dy, dx) in pixels, channel 2 the mask logit. Inputs must have
    sides divisible by :attr:`pad_multiple`.
    """

    def __init__(
        self, width: int = 32, depth: int = 3, cell: int = 4, in_channels: int = IN_CHANNELS
    ) -> None:
        super().__init__()
        self.depth = depth
        self.cell = cell
        widths = [width * 2**level for level in range(depth + 1)]
        self.stem = nn.Sequential(
            nn.PixelUnshuffle(cell),
            nn.Conv2d(in_channels * cell * cell, width, 1, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(inplace=True),
        )
        self.down = nn.ModuleList()
        previous = width
        for channels in widths:
            self.down.append(_Block(previous, channels))
            previous = channels
        self.up_convs = nn.ModuleList()
        self.up_blocks = nn.ModuleList()
        for channels in reversed(widths[:-1]):
            self.up_convs.append(nn.Conv2d(previous, channels, 1))
            self.up_blocks.append(_Block(2 * channels, channels))
            previous = channels
        self.head = nn.Conv2d(previous, OUT_CHANNELS, 1)
        # Start by predicting no flow and no mask: an untrained model changes nothing.
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)
        with torch.no_grad():
            self.head.bias[2] = -3.0

    @property
    def pad_multiple(self) -> int:
        return self.cell * 2**self.depth

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        x = self.stem(x)
        skips = []
        for level, block in enumerate(self.down):
            x = block(x)
            if level < self.depth:
                skips.append(x)
                x = F.max_pool2d(x, 2)
        for conv, block in zip(self.up_convs, self.up_blocks, strict=True):
            skip = skips.pop()
            x = F.interpolate(conv(x), size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = block(torch.cat([x, skip], dim=1))
        out = F.interpolate(self.head(x), size=size, mode="bilinear", align_corners=False)
        return torch.cat([out[:, :2] * FLOW_SCALE, out[:, 2:]], dim=1)


def run_network(
    network: FlowUNet,
    image: np.ndarray,
    offset: tuple[int, int] = (0, 0),
    resampling: bool = False,
) -> np.ndarray:
    """Float32 (H, W, 3): predicted dy, dx and mask probability for one image (eval mode).

    The input is padded at the bottom and right (reflected) to a multiple of the U-Net's
    stride; padding there leaves the block grid's phase untouched.
    """
    height, width = image.shape[:2]
    multiple = network.pad_multiple
    features = flow_features(image, offset, resampling)
    pad_h, pad_w = (-height) % multiple, (-width) % multiple
    tensor = torch.from_numpy(features)[None]
    if pad_h or pad_w:
        mode = "reflect" if pad_h < height and pad_w < width else "replicate"
        tensor = F.pad(tensor, (0, pad_w, 0, pad_h), mode=mode)
    with torch.inference_mode():
        out = network(tensor)[0, :, :height, :width]
    result = out.permute(1, 2, 0).numpy().astype(np.float32)
    result[..., 2] = 1.0 / (1.0 + np.exp(-result[..., 2]))
    return result


def run_network_views(
    network: FlowUNet,
    image: np.ndarray,
    offset: tuple[int, int] = (0, 0),
    resampling: bool = False,
    views: int = 1,
    combine: str = "median",
) -> np.ndarray:
    """:func:`run_network` over the first ``views`` of
    :data:`~fakescope.localizers.warp_flow.views.DIHEDRAL_VIEWS`, merged per pixel by
    ``combine`` ("mean" or "median"). The network was trained on all eight flips and transposes,
    so the views' errors differ and merging removes much of one view's wrong-signed flow.
    """
    check_views(views, combine)
    predictions = []
    for view in DIHEDRAL_VIEWS[:views]:
        pixels, view_offset = to_view(image, offset, view)
        predictions.append(from_view(run_network(network, pixels, view_offset, resampling), view))
    return merge_views(predictions, combine)
