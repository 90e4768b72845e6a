"""Patch scanning: an image-level detector run on a sliding window, its scores spread back.

Any bundled or saved detector model (``fakescope.models.load_model``) scores overlapping
``window`` x ``window`` crops taken every ``stride`` pixels; each pixel's heat aggregates the
scores of the windows that cover it. With the default Gaussian aggregation a window's vote on
a pixel is weighted by a Gaussian centred on the window, so a window's score is attributed
mostly to its centre: the map is smooth (no stride-sized steps, as with a plain mean) and it
does not bleed a single hot window over its whole extent (as ``max`` does).

Windows are generated lazily and scored ``batch_size`` at a time, so only one batch of crops
plus two float32 accumulators at image resolution live at once, whatever the image size.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Self

import numpy as np

from fakescope.localizers.base import JpegTables, Localizer, check_images_masks

if TYPE_CHECKING:
    from fakescope.calibration.model import CalibratedModel

AGGREGATIONS = ("gaussian", "mean", "max")
#: Gaussian sigma as a fraction of the window side: the centre weighs ~7x more than a corner.
SIGMA_FRACTION = 0.25


def window_starts(length: int, window: int, stride: int) -> list[int]:
    """Start offsets of windows covering ``[0, length)``; the last one ends at ``length``."""
    if length <= window:
        return [0]
    starts = list(range(0, length - window + 1, stride))
    if starts[-1] != length - window:
        starts.append(length - window)
    return starts


def gaussian_window(side_y: int, side_x: int, sigma_fraction: float = SIGMA_FRACTION) -> np.ndarray:
    """Separable Gaussian weights (float32, peak 1) centred on a ``side_y`` x ``side_x`` window."""

    def profile(side: int) -> np.ndarray:
        offsets = np.arange(side, dtype=np.float32) - (side - 1) / 2.0
        sigma = max(sigma_fraction * side, 1.0)
        return np.exp(-0.5 * (offsets / sigma) ** 2).astype(np.float32)

    return np.outer(profile(side_y), profile(side_x))


class PatchScanLocalizer(Localizer):
    """Heat map = aggregated detector scores of the sliding windows covering each pixel.

    Parameters
    ----------
    model:
        A bundled model name or a model folder (what ``fakescope.models.load_model`` reads);
        loaded on first use.
    window, stride:
        Window side and step in pixels. ``stride < window`` makes windows overlap; smaller
        strides give finer maps at quadratic cost.
    aggregation:
        ``"gaussian"`` (default: Gaussian-weighted mean of the covering windows' scores),
        ``"mean"`` (plain mean: blocky, stride-sized steps) or ``"max"`` (the hottest covering
        window: never misses a fake window but dilates it by a window on every side).
    batch_size:
        Windows scored per ``predict_proba`` call.
    max_windows:
        On very large images the stride is widened (never beyond ``window``) so that at most
        about this many windows are scored; a 6000x4000 photo stays a matter of minutes.
    """

    name = "patch-scan"
    default_threshold: ClassVar[float] = 0.5

    def __init__(
        self,
        model: str = "universal-cnn-default",
        window: int = 128,
        stride: int = 32,
        aggregation: str = "gaussian",
        batch_size: int = 16,
        max_windows: int = 4096,
    ) -> None:
        self.model = model
        self.window = window
        self.stride = stride
        self.aggregation = aggregation
        self.batch_size = batch_size
        self.max_windows = max_windows

    def check_params(self) -> None:
        if not isinstance(self.model, str | Path) or not str(self.model):
            raise ValueError(f"model must name a bundled model or a folder, got {self.model!r}")
        if int(self.window) < 8:
            raise ValueError(f"window must be at least 8 pixels, got {self.window}")
        if not 1 <= int(self.stride) <= int(self.window):
            raise ValueError(f"stride must be in [1, window={self.window}], got {self.stride}")
        if self.aggregation not in AGGREGATIONS:
            raise ValueError(f"aggregation must be one of {AGGREGATIONS}, got {self.aggregation!r}")
        if int(self.batch_size) < 1:
            raise ValueError(f"batch_size must be positive, got {self.batch_size}")
        if int(self.max_windows) < 1:
            raise ValueError(f"max_windows must be positive, got {self.max_windows}")

    # -- the detector ------------------------------------------------------------------------
    def detector_model(self) -> CalibratedModel:
        """The scoring model, loaded once (``ModelError`` if the name or folder is wrong)."""
        cached = getattr(self, "model_", None)
        if cached is None or getattr(self, "model_source_", None) != str(self.model):
            from fakescope.models import load_model

            cached = load_model(self.model)
            self.model_ = cached
            self.model_source_ = str(self.model)
        return cached

    @property
    def threshold(self) -> float:
        """The calibrated pixel threshold, else the detector's own image-level threshold.

        A window's heat is the detector's probability that the window is fake, so before any
        pixel calibration the detector's calibrated decision threshold is the natural cut.
        """
        if self.threshold_ is not None:
            return float(self.threshold_)
        try:
            return float(self.detector_model().calibration.threshold)
        except AttributeError:
            return self.default_threshold

    # -- fitting -----------------------------------------------------------------------------
    def fit(
        self,
        images: Sequence[np.ndarray],
        masks: Sequence[np.ndarray | None],
        on_progress: Callable[[int, int], None] | None = None,
    ) -> Self:
        """No training: the detector is already trained and calibrated.

        Only validates the inputs and the parameters and returns ``self``; use
        :meth:`calibrate` to set a pixel threshold from tampered and pristine images.
        """
        self.check_params()
        check_images_masks(images, masks)
        return self

    # -- prediction --------------------------------------------------------------------------
    def _geometry(self, height: int, width: int) -> tuple[int, int, int]:
        """Window height, width and the stride actually used for this image."""
        window_y, window_x = min(int(self.window), height), min(int(self.window), width)
        stride = int(self.stride)
        while stride < min(window_y, window_x):
            count = len(window_starts(height, window_y, stride)) * len(
                window_starts(width, window_x, stride)
            )
            if count <= int(self.max_windows):
                break
            stride = min(stride * 2, min(window_y, window_x))
        return window_y, window_x, max(stride, 1)

    def windows(self, image: np.ndarray) -> Iterator[tuple[int, int, np.ndarray]]:
        """``(y0, x0, crop)`` of every window, lazily (crops are views, not copies)."""
        height, width = image.shape[:2]
        window_y, window_x, stride = self._geometry(height, width)
        for y0 in window_starts(height, window_y, stride):
            for x0 in window_starts(width, window_x, stride):
                yield y0, x0, image[y0 : y0 + window_y, x0 : x0 + window_x]

    def predict_heatmap(
        self, image: np.ndarray, *, jpeg_quantization: JpegTables = None
    ) -> np.ndarray:
        self.check_params()
        height, width = image.shape[:2]
        window_y, window_x, _ = self._geometry(height, width)
        model = self.detector_model()
        if self.aggregation == "gaussian":
            weight = gaussian_window(window_y, window_x)
        else:
            weight = np.ones((window_y, window_x), dtype=np.float32)
        is_max = self.aggregation == "max"
        total = np.zeros((height, width), dtype=np.float32)
        coverage = None if is_max else np.zeros((height, width), dtype=np.float32)
        batch: list[tuple[int, int, np.ndarray]] = []

        def flush() -> None:
            scores = np.asarray(model.score([crop for _, _, crop in batch]), dtype=np.float32)
            for (y0, x0, _), score in zip(batch, scores, strict=True):
                region = (slice(y0, y0 + window_y), slice(x0, x0 + window_x))
                if coverage is None:
                    np.maximum(total[region], score, out=total[region])
                else:
                    total[region] += weight * score
                    coverage[region] += weight
            batch.clear()

        for entry in self.windows(image):
            batch.append(entry)
            if len(batch) == int(self.batch_size):
                flush()
        if batch:
            flush()
        if coverage is not None:
            total /= np.maximum(coverage, np.float32(1e-12))
        return np.clip(total, 0.0, 1.0)

    # -- persistence: the model is referenced by name in params, nothing learned ------------
    def _weights(self) -> dict[str, np.ndarray]:
        return {}

    def _set_weights(self, weights: dict[str, np.ndarray], state: dict[str, Any]) -> None:
        return None
