"""The frequency detector, in the spirit of F3-Net: Qian et al. ECCV 2020, "Thinking in
frequency: face forgery detection by mining frequency-aware clues".

Two streams over the same fixed-size crop (:mod:`fakescope.detectors.frequency.network`):

- FAD (frequency-aware decomposition): full-image DCT, low/mid/high band filters (fixed masks
  plus learnable adjustments), inverse DCT: nine band images for a small CNN;
- LFS (local frequency statistics): 8x8 sliding-window DCT of the grey image, log magnitude
  averaged over frequency bands: a small multi-channel map for a second small CNN.

Their pooled features are concatenated into one logit. The full-image DCT is a fixed matrix of
the crop size, so every crop has exactly ``crop_size`` pixels a side and smaller images are
refused (``min_image_side`` is ``crop_size``): padding would add the padding's spectrum.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Self

import numpy as np

from fakescope.detectors.torch_detector import ProgressCallback, TorchDetector
from fakescope.errors import ImageTooSmallError
from fakescope.nn.preprocess import InputConfig

if TYPE_CHECKING:
    import torch

#: ``lfs_bands`` can be at most the number of diagonals of an 8x8 block (u + v in 0..14).
MAX_LFS_BANDS = 15


class FrequencyDetector(TorchDetector):
    """FAD (global DCT bands) and LFS (local DCT statistics) streams -> one logit."""

    name = "frequency"

    def __init__(
        self,
        crop_size: int = 128,
        width: int = 32,
        stages: int = 3,
        lfs_bands: int = 6,
        lfs_stride: int = 4,
        epochs: int = 5,
        batch_size: int = 32,
        learning_rate: float = 1e-3,
        weight_decay: float = 1e-4,
        blur_prob: float = 0.1,
        jpeg_prob: float = 0.1,
        random_state: int = 0,
        threads: int = 0,
        crop_grid: int = 1,
    ) -> None:
        self.crop_size = crop_size
        self.width = width
        self.stages = stages
        self.lfs_bands = lfs_bands
        self.lfs_stride = lfs_stride
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.blur_prob = blur_prob
        self.jpeg_prob = jpeg_prob
        self.random_state = random_state
        self.threads = threads
        self.crop_grid = crop_grid

    @property
    def min_image_side(self) -> int:  # type: ignore[override]
        """The crop size: the full-image DCT has a fixed size, so smaller images are refused."""
        return int(self.crop_size)

    def check_params(self) -> None:
        super().check_params()
        # At least 32, so the LFS map (8x8 windows) still has a few positions per side.
        if int(self.crop_size) < 32:
            raise ValueError(f"crop_size must be at least 32, got {self.crop_size}")
        if int(self.width) < 4:
            raise ValueError(f"width must be at least 4, got {self.width}")
        if not 1 <= int(self.stages) <= 5:
            raise ValueError(f"stages must be between 1 and 5, got {self.stages}")
        if not 1 <= int(self.lfs_bands) <= MAX_LFS_BANDS:
            raise ValueError(f"lfs_bands must be between 1 and {MAX_LFS_BANDS}: {self.lfs_bands}")
        if not 1 <= int(self.lfs_stride) <= 8:
            raise ValueError(f"lfs_stride must be between 1 and 8, got {self.lfs_stride}")

    def input_config(self) -> InputConfig:
        # The LFS log offset is set in grey levels for exactly this normalisation.
        return InputConfig(crop_size=int(self.crop_size), mean=(0.5,) * 3, std=(0.5,) * 3)

    def build_network(self) -> torch.nn.Module:
        from fakescope.detectors.frequency.network import FrequencyNetwork

        return FrequencyNetwork(
            size=int(self.crop_size),
            width=int(self.width),
            stages=int(self.stages),
            lfs_bands=int(self.lfs_bands),
            lfs_stride=int(self.lfs_stride),
        )

    # -- size checks -------------------------------------------------------------------------
    def _require_size(self, images: Sequence[np.ndarray]) -> None:
        side = int(self.crop_size)
        for index, image in enumerate(images):
            height, width = image.shape[:2]
            if min(height, width) < side:
                raise ImageTooSmallError(
                    f"image {index} is {width}x{height} pixels; the frequency detector needs "
                    f"at least {side}x{side} (its full-image DCT has a fixed size)"
                )

    def fit(
        self,
        images: Sequence[np.ndarray],
        labels: Sequence[int],
        on_progress: ProgressCallback | None = None,
    ) -> Self:
        self.check_params()
        # The base class would shrink the training crop to the smallest image; this network
        # cannot take any other size, so say so before any work.
        self._require_size(images)
        return super().fit(images, labels, on_progress)

    def predict_logits(self, images: Sequence[np.ndarray]) -> np.ndarray:
        self._require_size(images)
        return super().predict_logits(images)

    # -- evidence ----------------------------------------------------------------------------
    def explain(self, images: Sequence[np.ndarray]) -> list[dict[str, Any]]:
        return self.predict_with_evidence(images)[1]

    def predict_with_evidence(
        self, images: Sequence[np.ndarray]
    ) -> tuple[np.ndarray, list[dict[str, Any]]]:
        """Scores, plus each stream's exact share of the logit and the crop's DCT energy split.

        ``frequency_logit_by_stream``: the FAD and LFS streams' contributions and the bias; the
        three add up to ``frequency_logit`` (the fusion is one linear layer). ``dct_energy_share``:
        the fraction of the crop's non-DC DCT energy in F3-Net's fixed low/mid/high bands.
        """
        from scipy.special import expit

        from fakescope.detectors.frequency.network import FAD_BANDS

        self._require_size(images)
        if getattr(self, "onnx_backend_", None) is not None or int(self.crop_grid) > 1:
            # The exported graph returns only the fused logit, and per-stream parts are defined
            # for one crop: a grid's mean logit has no single decomposition.
            logits = self.predict_logits(images)
            rows = [{"frequency_logit": round(float(v), 4)} for v in logits]
            return expit(logits), rows
        network = self._network()
        if not len(images):
            return np.empty(0), []

        def streams(inputs: torch.Tensor) -> list[torch.Tensor]:
            batch_logits, batch_parts = network.forward_with_streams(inputs)
            return [batch_logits, batch_parts, network.fad.band_energy_share(inputs)]

        logits, parts, shares = self.forward_batches(images, streams)
        evidence = [
            {
                "frequency_logit": round(float(logit), 4),
                "frequency_logit_by_stream": {
                    key: round(float(value), 4)
                    for key, value in zip(("fad", "lfs", "bias"), row, strict=True)
                },
                "dct_energy_share": {
                    band: round(float(value), 4)
                    for band, value in zip(FAD_BANDS, share, strict=True)
                },
            }
            for logit, row, share in zip(logits, parts, shares, strict=True)
        ]
        return expit(logits), evidence
