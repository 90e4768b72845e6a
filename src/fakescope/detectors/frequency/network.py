"""The two-stream frequency network (after F3-Net): FAD and LFS streams, fused into one logit.

Imported only when a network is built, so that the registry works without torch. The DCTs are
matrix products and fixed convolutions with constant weights, so an ONNX export (opset 17)
captures the whole pipeline from normalised pixels to the logit.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fakescope.detectors.npr.network import SmallResNet

#: F3-Net's band edges on the diagonal frequency index ``i + j`` of the full-image DCT, as
#: fractions of the side: low is ``i + j <= side/16``, mid up to ``side/8``, high the rest.
FAD_EDGES: tuple[float, float] = (1 / 16, 1 / 8)
FAD_BANDS: tuple[str, str, str] = ("low", "mid", "high")
#: LFS block size: 8x8, the JPEG block, so compression and generator grids both show in it.
LFS_WINDOW = 8
#: One grey level in the network's input units (inputs are ``(x/255 - 0.5) / 0.5``).
GREY_LEVEL = 2.0 / 255.0
#: Offset inside the LFS log: a tenth of a grey level. Exact zeros (flat synthetic areas)
#: would otherwise give log(0) spikes that swamp every other statistic.
LFS_EPS = 0.1 * GREY_LEVEL
#: Luma weights (ITU-R BT.601), the grey image LFS works on, as in F3-Net.
LUMA: tuple[float, float, float] = (0.299, 0.587, 0.114)


def dct_matrix(size: int) -> np.ndarray:
    """The orthonormal DCT-II matrix ``D`` (rows are basis vectors): ``D @ D.T == I``.

    ``D @ x @ D.T`` is the 2-D DCT of a square ``x`` and ``D.T @ X @ D`` its inverse.
    """
    n = np.arange(size, dtype=np.float64)
    matrix = np.cos(np.pi * (n[None, :] + 0.5) * n[:, None] / size) * np.sqrt(2.0 / size)
    matrix[0] /= np.sqrt(2.0)
    return matrix


def fad_base_masks(size: int) -> np.ndarray:
    """(3, size, size) 0/1 masks of the low, mid and high bands; they partition the plane."""
    diagonal = np.add.outer(np.arange(size), np.arange(size)).astype(np.float64)
    low_edge, mid_edge = (fraction * size for fraction in FAD_EDGES)
    low = diagonal <= low_edge
    mid = (diagonal > low_edge) & (diagonal <= mid_edge)
    return np.stack([low, mid, ~(low | mid)]).astype(np.float64)


def lfs_band_matrix(bands: int, window: int = LFS_WINDOW) -> np.ndarray:
    """(bands, window*window) averaging weights: band ``m`` averages the coefficients whose
    diagonal index ``u + v`` falls in the ``m``-th of ``bands`` equal slices of [0, 2w - 2]."""
    u, v = np.divmod(np.arange(window * window), window)
    band_of = (u + v) * bands // (2 * window - 1)
    weights = np.zeros((bands, window * window))
    weights[band_of, np.arange(window * window)] = 1.0
    return weights / weights.sum(axis=1, keepdims=True)


class FrequencyDecomposition(nn.Module):
    """FAD: full-image DCT, three band filters (fixed base + learnable adjustment), inverse DCT.

    (N, 3, S, S) -> (N, 9, S, S): for each band, the image with only that band's frequencies
    (band-major: low RGB, mid RGB, high RGB). As in F3-Net the filter is
    ``base + (2 sigmoid(a) - 1)`` with ``a`` learnable, so a zero ``a`` gives the fixed
    partition and the three band images sum back to the input.
    """

    def __init__(self, size: int, adjust_std: float = 0.1) -> None:
        super().__init__()
        dct = torch.from_numpy(dct_matrix(size)).float()
        # Fixed, so not saved: rebuilt from the crop size, which the config carries.
        self.register_buffer("dct", dct, persistent=False)
        self.register_buffer("idct", dct.T.contiguous(), persistent=False)
        base = torch.from_numpy(fad_base_masks(size)).float()
        self.register_buffer("base", base, persistent=False)
        self.adjust = nn.Parameter(torch.randn(len(FAD_BANDS), size, size) * adjust_std)

    def filters(self) -> torch.Tensor:
        """(3, S, S) band filters in effect."""
        return self.base + (2.0 * torch.sigmoid(self.adjust) - 1.0)

    def spectrum(self, x: torch.Tensor) -> torch.Tensor:
        """2-D DCT of each channel: ``D @ x @ D.T``."""
        return self.dct @ x @ self.idct

    def band_energy_share(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3): share of the non-DC DCT energy (all channels) in the fixed base bands."""
        energy = self.spectrum(x).square().sum(dim=1)  # (N, S, S)
        energy[:, 0, 0] = 0.0  # the DC term is the mean brightness, not a frequency
        per_band = torch.einsum("nij,bij->nb", energy, self.base)
        return per_band / per_band.sum(dim=1, keepdim=True).clamp_min(1e-12)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        spectrum = self.spectrum(x).unsqueeze(1)  # (N, 1, 3, S, S)
        bands = spectrum * self.filters()[None, :, None]  # (N, 3 bands, 3 channels, S, S)
        images = self.idct @ bands @ self.dct
        return torch.flatten(images, 1, 2)


class LocalFrequencyStatistics(nn.Module):
    """LFS: 8x8 block DCT of the grey image on a sliding window, log magnitude, band means.

    The block DCT is one convolution with the 64 DCT basis images as kernels (times the luma
    weights, so the grey conversion is folded in); the band averages are a fixed 1x1
    convolution. (N, 3, H, W) -> (N, bands, (H-8)//stride + 1, (W-8)//stride + 1).
    """

    def __init__(self, bands: int, stride: int) -> None:
        super().__init__()
        d = dct_matrix(LFS_WINDOW)
        basis = np.einsum("ui,vj->uvij", d, d).reshape(LFS_WINDOW**2, 1, LFS_WINDOW, LFS_WINDOW)
        kernels = basis * np.asarray(LUMA).reshape(1, 3, 1, 1)
        average = lfs_band_matrix(bands).reshape(bands, LFS_WINDOW**2, 1, 1)
        self.register_buffer("kernels", torch.from_numpy(kernels).float(), persistent=False)
        self.register_buffer("average", torch.from_numpy(average).float(), persistent=False)
        self.stride = int(stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        coefficients = F.conv2d(x, self.kernels, stride=self.stride)
        return F.conv2d(torch.log(coefficients.abs() + LFS_EPS), self.average)


class FrequencyNetwork(nn.Module):
    """Normalised (N, 3, S, S) -> (N,) logits; S is fixed (the full-image DCT's size).

    Each stream has its own small residual CNN behind a batch norm (the band images and log
    statistics have very different scales); the pooled features are concatenated and one
    linear layer gives the logit, so each stream's share of the logit is exact (see
    :meth:`forward_with_streams`).
    """

    def __init__(self, size: int, width: int, stages: int, lfs_bands: int, lfs_stride: int):
        super().__init__()
        self.fad = FrequencyDecomposition(size)
        # Input standardisation per channel. momentum=None keeps a cumulative average over all
        # of training: the inputs' scales span 1e-3 (high band) to 1, and the default running
        # average would need hundreds of steps to forget its initial variance of 1.
        self.fad_norm = nn.BatchNorm2d(3 * len(FAD_BANDS), momentum=None)
        self.fad_net = SmallResNet(3 * len(FAD_BANDS), width, stages)
        self.lfs = LocalFrequencyStatistics(lfs_bands, lfs_stride)
        self.lfs_norm = nn.BatchNorm2d(lfs_bands, momentum=None)
        # The LFS map is already 1/stride of the input: no max pool in its stem.
        self.lfs_net = SmallResNet(lfs_bands, width, stages, pool_stem=False)
        self.head = nn.Linear(self.fad_net.out_channels + self.lfs_net.out_channels, 1)

    def stream_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        fad = self.fad_net(self.fad_norm(self.fad(x)))
        lfs = self.lfs_net(self.lfs_norm(self.lfs(x)))
        return fad, lfs

    def forward_with_streams(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits (N,) and (N, 3) parts: the FAD stream's and the LFS stream's contributions
        and the bias, which sum to the logit (the logits are exactly :meth:`forward`'s)."""
        fad, lfs = self.stream_features(x)
        logits = self.head(torch.cat([fad, lfs], dim=1))[:, 0]
        weight = self.head.weight[0]
        split = fad.shape[1]
        bias = self.head.bias.expand(fad.shape[0])
        return logits, torch.stack([fad @ weight[:split], lfs @ weight[split:], bias], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.cat(self.stream_features(x), dim=1))[:, 0]
