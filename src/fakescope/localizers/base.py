"""The localizer contract: where in an image something was changed.

A localizer is a scikit-learn style estimator over images and their ground-truth masks:
``fit(images, masks)`` (a mask is a bool (H, W) array, or None for a pristine image),
``predict_heatmap(image)`` (a float32 map in [0, 1] at the image's resolution),
``localize(image)`` (a :class:`~fakescope.results.Localization`: heat map, mask at the
calibrated threshold, image-level score), ``calibrate(images, masks)`` (sets the pixel and
image thresholds that maximise pixel F1 over all images), ``get_params()``, and ``save(dir)`` /
``load(dir)`` writing a JSON config plus safetensors or ``.npz`` arrays, never pickles.

Images are RGB ``uint8`` arrays (H, W, 3) of any size; a localizer bounds its memory on large
images by tiling (:mod:`fakescope.localizers.tiling`). ``jpeg_quantization`` is the file's
quantization tables as Pillow reports them (``ImageMetadata.jpeg_quantization``), None when
the file is not a JPEG; methods that use JPEG cues read it, the others ignore it.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np

from fakescope.calibration.pixel import best_f1_thresholds
from fakescope.detectors.base import SavedEstimator, read_config
from fakescope.results import Localization

JpegTables = dict[int, list[int]] | None
#: Share of the hottest pixels whose mean heat is the default image-level score.
TOP_SHARE = 0.01
#: Pixels the image-level score looks at, at most (a strided view of larger maps).
SCORE_PIXELS = 1_000_000


class Localizer(SavedEstimator):
    """Base class: subclasses declare their hyper-parameters as ``__init__`` arguments."""

    #: Images with a side shorter than this are refused with ImageTooSmallError.
    min_image_side: ClassVar[int] = 16
    config_kind: ClassVar[str] = "localizer"
    weights_format: ClassVar[str] = "safetensors"
    weights_required: ClassVar[bool] = False  # copy-move has parameters only
    #: Threshold on the heat map before :meth:`calibrate` has run.
    default_threshold: ClassVar[float] = 0.5

    # Learned state, set by ``calibrate`` (and restored by ``load``).
    threshold_: float | None = None
    image_threshold_: float | None = None

    @abstractmethod
    def fit(
        self,
        images: Sequence[np.ndarray],
        masks: Sequence[np.ndarray | None],
        on_progress: Callable[[int, int], None] | None = None,
    ) -> Self:
        """Learn from images and their masks (None or all-False: pristine)."""

    @abstractmethod
    def predict_heatmap(
        self, image: np.ndarray, *, jpeg_quantization: JpegTables = None
    ) -> np.ndarray:
        """Float32 (H, W) map in [0, 1]: how likely each pixel was changed."""

    def image_score(self, heatmap: np.ndarray) -> float:
        """Image-level probability of manipulation; by default the mean of the hottest 1 %."""
        return top_share_mean(heatmap, TOP_SHARE)

    def regions(self, mask: np.ndarray) -> list[dict[str, Any]]:
        """Connected regions of ``mask`` as JSON-ready dicts; methods may name more."""
        from fakescope.localizers.regions import mask_regions

        return mask_regions(mask)

    @property
    def threshold(self) -> float:
        """Pixel threshold: ``mask = heatmap >= threshold``."""
        return self.default_threshold if self.threshold_ is None else float(self.threshold_)

    @property
    def image_threshold(self) -> float:
        """Image-score threshold: below it the image is called pristine and its mask emptied.

        Until calibrated it equals the pixel threshold, so with the default image score a mask
        survives when about 1 % of the image is flagged.
        """
        return self.threshold if self.image_threshold_ is None else float(self.image_threshold_)

    def localize(self, image: np.ndarray, *, jpeg_quantization: JpegTables = None) -> Localization:
        """Heat map, mask at the calibrated thresholds, image score and regions for one image."""
        check_image(image, self.min_image_side)
        heatmap = self.predict_heatmap(image, jpeg_quantization=jpeg_quantization)
        return self.build_localization(heatmap)

    def build_localization(
        self,
        heatmap: np.ndarray,
        *,
        regions: list[dict[str, Any]] | None = None,
        flow: np.ndarray | None = None,
        details: dict[str, Any] | None = None,
    ) -> Localization:
        """The one way a heat map becomes a :class:`Localization` (methods that override
        :meth:`localize` to add regions, a flow or details call it too).

        Detect, then localize: the mask is ``heatmap >= threshold`` only when the image score
        reaches ``image_threshold``; otherwise it is empty. Scattered hot pixels on a pristine
        photo then cost nothing, and the pixel threshold can be set for the tampered ones.
        """
        heatmap = np.clip(heatmap, 0.0, 1.0).astype(np.float32, copy=False)
        score = self.image_score(heatmap)
        if score >= self.image_threshold:
            mask = heatmap >= self.threshold
        else:
            mask = np.zeros(heatmap.shape, dtype=bool)
        return Localization(
            heatmap=heatmap,
            mask=mask,
            score=score,
            threshold=self.threshold,
            image_threshold=self.image_threshold,
            method=self.name,
            regions=self.regions(mask) if regions is None else regions,
            flow=flow,
            details=details or {},
        )

    def calibrate(
        self,
        images: Sequence[np.ndarray],
        masks: Sequence[np.ndarray | None],
        jpeg_quantizations: Sequence[JpegTables] | None = None,
    ) -> Self:
        """Set ``threshold_`` and ``image_threshold_`` to the pair maximising mean pixel F1
        over all these images, tampered and pristine (F1 of a pristine image: 1 iff nothing is
        flagged). Use images disjoint from the training ones (other photos).
        """
        tables = jpeg_quantizations or [None] * len(images)
        heatmaps = [
            np.clip(self.predict_heatmap(image, jpeg_quantization=table), 0.0, 1.0)
            for image, table in zip(images, tables, strict=True)
        ]
        scores = [self.image_score(heatmap) for heatmap in heatmaps]
        self.threshold_, self.image_threshold_ = best_f1_thresholds(heatmaps, masks, scores)
        return self

    # -- persistence (``SavedEstimator``; the thresholds go in the config) -----------------
    def _config_extra(self) -> dict[str, Any]:
        return {"threshold": self.threshold_, "image_threshold": self.image_threshold_}

    def _restore_extra(self, config: dict[str, Any]) -> None:
        threshold, image_threshold = config.get("threshold"), config.get("image_threshold")
        self.threshold_ = None if threshold is None else float(threshold)
        self.image_threshold_ = None if image_threshold is None else float(image_threshold)


def top_share_mean(heatmap: np.ndarray, share: float) -> float:
    """Mean of the hottest ``share`` of a heat map's pixels (at least one), in bounded time."""
    # A strided view keeps this cheap on a 24-megapixel map; the hottest pixels of a heat map
    # that varies over tens of pixels are the same on every fourth row and column.
    stride = max(1, int(np.sqrt(heatmap.size / SCORE_PIXELS)))
    flat = np.ascontiguousarray(heatmap[::stride, ::stride]).ravel()
    count = max(1, round(flat.size * share))
    return float(np.partition(flat, flat.size - count)[-count:].mean())


def read_localizer_config(directory: str | Path) -> dict[str, Any]:
    """Read and check a saved localizer's ``config.json``."""
    return read_config(directory, kind="localizer")


def check_image(image: np.ndarray, min_side: int) -> None:
    """Refuse what no localizer can read, with the scan's typed errors."""
    from fakescope.errors import ImageTooSmallError

    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an RGB uint8 (H, W, 3) array, got {image.dtype} {image.shape}")
    if min(image.shape[:2]) < min_side:
        raise ImageTooSmallError(
            f"image is {image.shape[1]}x{image.shape[0]}; localization needs sides of at least "
            f"{min_side} px"
        )


def check_images_masks(
    images: Sequence[np.ndarray], masks: Sequence[np.ndarray | None]
) -> list[np.ndarray]:
    """Validate ``fit`` inputs; returns every mask as bool (H, W), all-False for pristine."""
    if len(images) != len(masks):
        raise ValueError(f"{len(images)} images but {len(masks)} masks")
    if not images:
        raise ValueError("fit needs at least one image")
    out = []
    for image, mask in zip(images, masks, strict=True):
        if mask is None:
            out.append(np.zeros(image.shape[:2], dtype=bool))
            continue
        mask = np.asarray(mask)
        if mask.shape != image.shape[:2]:
            raise ValueError(f"mask {mask.shape} does not match image {image.shape[:2]}")
        out.append(mask.astype(bool, copy=False))
    return out
