"""Copy-move matching: find a region duplicated elsewhere in the same image, maybe rotated/scaled.

Keypoint pipeline in the spirit of Amerini et al. (2011, SIFT + g2NN + clustering) and Pan and
Lyu (2010, SIFT + RANSAC + a dense correlation map), written from the papers:

1. SIFT keypoints of the luma (on a 2x upscaled copy when the image is small, so that a
   256 px tile yields enough of them).
2. Each keypoint is matched against all the others of the same image; the generalised
   2-nearest-neighbour test (g2NN) keeps every neighbour whose distance ratio to the next one
   is below ``ratio``, and pairs closer than ``min_offset`` pixels are dropped (a texture
   matches its own neighbourhood).
3. RANSAC fits a similarity transform (rotation, uniform scale, translation: what the
   benchmark's copy-moves use) to the pairs, each entered in both directions so that the
   unknown copy direction does not matter; its inliers are removed and RANSAC repeats for a
   further copy, up to ``max_transforms``.
4. Dense verification: the image is warped by the transform and by its inverse, and the local
   zero-mean normalised cross-correlation (ZNCC) between each warp and the image marks the
   pixels whose neighbourhood reappears at the mapped place. Connected regions of high ZNCC
   that hold inlier keypoints become the target and source regions; flat areas (where any
   shift correlates) and pixels that the transform barely moves are excluded.
5. Roles: the copy was resampled once by the forger, so warping the source onto the target
   reproduces it better than the other way round (which resamples twice); the region that the
   better-matching direction lands on is named ``target``.

The heat map is the ZNCC inside the accepted regions (0 elsewhere); the image score is its
mean over those regions (0 when no copy was found). No training: ``fit`` validates its
inputs and returns ``self``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Self

import numpy as np
from scipy import ndimage

from fakescope.features.residuals import luminance
from fakescope.localizers.base import (
    JpegTables,
    Localizer,
    check_image,
    check_images_masks,
)
from fakescope.results import Localization

#: Images with a longer side below this are upscaled 2x for keypoint detection.
UPSCALE_BELOW = 512
#: Largest side analysed; bigger images are downscaled for matching, maps upscaled back.
MAX_SIDE = 2048
_MAX_MATCH_NEIGHBOURS = 8


@dataclass
class CopyMatch:
    """One detected copy: the similarity transform and its source/target masks."""

    affine: np.ndarray  # 2x3, source -> target, (x, y) order as OpenCV uses it
    inliers: int
    source: np.ndarray  # (H, W) bool
    target: np.ndarray  # (H, W) bool
    correlation: np.ndarray  # (H, W) float32, ZNCC inside source | target, 0 elsewhere
    direction_margin: float  # ZNCC gain of the chosen direction (how sure the roles are)


def _require_cv2() -> Any:
    try:
        import cv2
    except ImportError as exc:  # pragma: no cover - opencv is a core dependency
        from fakescope.errors import ModelError

        raise ModelError("the copy-move matcher needs OpenCV (opencv-python)") from exc
    return cv2


def local_zncc(first: np.ndarray, second: np.ndarray, sigma: float) -> tuple[np.ndarray, ...]:
    """Gaussian-windowed ZNCC of two float32 images, and each one's local standard deviation."""
    cv2 = _require_cv2()

    def blur(values: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(values, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)

    mean_a, mean_b = blur(first), blur(second)
    var_a = np.maximum(blur(first * first) - mean_a * mean_a, 0.0)
    var_b = np.maximum(blur(second * second) - mean_b * mean_b, 0.0)
    cov = blur(first * second) - mean_a * mean_b
    std_a, std_b = np.sqrt(var_a), np.sqrt(var_b)
    zncc = cov / np.maximum(std_a * std_b, 1e-6)
    return np.clip(zncc, -1.0, 1.0), std_a, std_b


class CopyMoveLocalizer(Localizer):
    """SIFT + g2NN + RANSAC similarity + dense ZNCC verification; names source and target.

    Parameters
    ----------
    ratio:
        g2NN distance-ratio test (lower: fewer, surer matches).
    min_offset:
        Matches and pixels moved by less than this many pixels are ignored.
    min_inliers:
        RANSAC inliers needed to accept a copy.
    ransac_threshold:
        RANSAC reprojection tolerance in pixels (of the analysed image).
    correlation:
        ZNCC a pixel needs to join a source or target region.
    min_std:
        Grey-level standard deviation below which a neighbourhood is too flat to judge.
    max_transforms:
        Copies searched for per image.
    min_region:
        Regions smaller than this share of the image are dropped.
    contrast_threshold:
        SIFT's contrast threshold (OpenCV's default is 0.04); lower finds keypoints in
        low-contrast content at the cost of more spurious ones.
    max_side:
        Longer images are matched downscaled to this side (bounded memory and time); the
        maps are upscaled back to the image's resolution.
    """

    name = "copy-move"
    min_image_side: ClassVar[int] = 32
    default_threshold: ClassVar[float] = 0.5

    def __init__(
        self,
        ratio: float = 0.5,
        min_offset: float = 12.0,
        min_inliers: int = 6,
        ransac_threshold: float = 3.0,
        correlation: float = 0.6,
        min_std: float = 0.7,
        max_transforms: int = 3,
        min_region: float = 0.001,
        contrast_threshold: float = 0.005,
        max_side: int = MAX_SIDE,
    ) -> None:
        self.ratio = ratio
        self.min_offset = min_offset
        self.min_inliers = min_inliers
        self.ransac_threshold = ransac_threshold
        self.correlation = correlation
        self.min_std = min_std
        self.max_transforms = max_transforms
        self.min_region = min_region
        self.contrast_threshold = contrast_threshold
        self.max_side = max_side

    def check_params(self) -> None:
        if not 0.0 < float(self.ratio) < 1.0:
            raise ValueError(f"ratio must be in (0, 1), got {self.ratio}")
        if float(self.min_offset) < 0:
            raise ValueError(f"min_offset must be non-negative, got {self.min_offset}")
        if int(self.min_inliers) < 3:
            raise ValueError(f"min_inliers must be at least 3, got {self.min_inliers}")
        if float(self.ransac_threshold) <= 0:
            raise ValueError(f"ransac_threshold must be positive, got {self.ransac_threshold}")
        if not 0.0 < float(self.correlation) < 1.0:
            raise ValueError(f"correlation must be in (0, 1), got {self.correlation}")
        if int(self.max_transforms) < 1:
            raise ValueError(f"max_transforms must be positive, got {self.max_transforms}")
        if int(self.max_side) < 64:
            raise ValueError(f"max_side must be at least 64, got {self.max_side}")
        if not 0.0 <= float(self.min_region) < 1.0:
            raise ValueError(f"min_region must be in [0, 1), got {self.min_region}")

    def fit(
        self,
        images: Sequence[np.ndarray],
        masks: Sequence[np.ndarray | None],
        on_progress: Callable[[int, int], None] | None = None,
    ) -> Self:
        """No training: the matcher has no learned state. Validates the inputs, returns self."""
        self.check_params()
        check_images_masks(images, masks)
        return self

    # -- matching ----------------------------------------------------------------------------
    def _keypoint_pairs(self, gray: np.ndarray) -> np.ndarray:
        """Matched pairs (n, 4) as (x1, y1, x2, y2) in ``gray``'s pixels, each pair once."""
        cv2 = _require_cv2()
        upscale = 2.0 if max(gray.shape) < UPSCALE_BELOW else 1.0
        detect_on = gray
        if upscale != 1.0:
            detect_on = cv2.resize(
                gray, None, fx=upscale, fy=upscale, interpolation=cv2.INTER_CUBIC
            )
        sift = cv2.SIFT_create(contrastThreshold=float(self.contrast_threshold))
        keypoints, descriptors = sift.detectAndCompute(detect_on, None)
        if descriptors is None or len(keypoints) < 3:
            return np.empty((0, 4), dtype=np.float32)
        points = np.array([kp.pt for kp in keypoints], dtype=np.float32) / upscale
        k = min(_MAX_MATCH_NEIGHBOURS + 1, len(keypoints))
        matcher = cv2.BFMatcher(cv2.NORM_L2)
        pairs: set[tuple[int, int]] = set()
        for neighbours in matcher.knnMatch(descriptors, descriptors, k=k):
            # neighbours[0] is the keypoint itself (distance 0), or a duplicate at its place.
            others = [m for m in neighbours if m.trainIdx != m.queryIdx]
            for first, second in itertools.pairwise(others):
                if first.distance >= float(self.ratio) * max(second.distance, 1e-6):
                    break
                a, b = first.queryIdx, first.trainIdx
                if np.hypot(*(points[a] - points[b])) >= float(self.min_offset):
                    pairs.add((min(a, b), max(a, b)))
        if not pairs:
            return np.empty((0, 4), dtype=np.float32)
        index = np.array(sorted(pairs))
        return np.concatenate([points[index[:, 0]], points[index[:, 1]]], axis=1)

    def _transforms(self, pairs: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """Similarity transforms (2x3, first -> second) and their inlier pairs (m, 4)."""
        cv2 = _require_cv2()
        found: list[tuple[np.ndarray, np.ndarray]] = []
        remaining = pairs
        while len(found) < int(self.max_transforms) and len(remaining) >= int(self.min_inliers):
            # Both directions: RANSAC picks the consistent orientation of every pair.
            sources = np.concatenate([remaining[:, :2], remaining[:, 2:]])
            targets = np.concatenate([remaining[:, 2:], remaining[:, :2]])
            affine, inlier_flags = cv2.estimateAffinePartial2D(
                sources,
                targets,
                method=cv2.RANSAC,
                ransacReprojThreshold=float(self.ransac_threshold),
                maxIters=4000,
                confidence=0.995,
                refineIters=10,
            )
            if affine is None or inlier_flags is None:
                break
            flags = inlier_flags.ravel().astype(bool)
            n = len(remaining)
            used = flags[:n] | flags[n:]
            oriented = np.concatenate([remaining[flags[:n]], remaining[flags[n:]][:, [2, 3, 0, 1]]])
            scale = float(np.hypot(affine[0, 0], affine[1, 0]))
            moves = np.hypot(*(oriented[:, 2:] - oriented[:, :2]).T) if len(oriented) else []
            if (
                int(used.sum()) < int(self.min_inliers)
                or not 0.25 <= scale <= 4.0
                or np.median(moves) < float(self.min_offset)
            ):
                break
            found.append((affine.astype(np.float64), oriented))
            remaining = remaining[~used]
        return found

    def _verify(
        self, gray: np.ndarray, affine: np.ndarray, inliers: np.ndarray
    ) -> CopyMatch | None:
        """Dense source/target regions of one transform, or None if nothing holds up."""
        cv2 = _require_cv2()
        height, width = gray.shape
        inverse = cv2.invertAffineTransform(affine)
        flags = cv2.INTER_LINEAR
        border = cv2.BORDER_CONSTANT
        # forward(p) = gray(A^-1 p): high ZNCC where p is a copy's target.
        forward = cv2.warpAffine(gray, affine, (width, height), flags=flags, borderMode=border)
        backward = cv2.warpAffine(gray, inverse, (width, height), flags=flags, borderMode=border)
        valid_fwd = cv2.warpAffine(
            np.ones_like(gray), affine, (width, height), flags=cv2.INTER_NEAREST
        ).astype(bool)
        valid_bwd = cv2.warpAffine(
            np.ones_like(gray), inverse, (width, height), flags=cv2.INTER_NEAREST
        ).astype(bool)
        sigma = 2.0
        zncc_target, std_image, std_fwd = local_zncc(gray, forward, sigma)
        zncc_source, _, std_bwd = local_zncc(gray, backward, sigma)
        ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
        # How far the transform moves each pixel: too little means self-similarity, not a copy.
        moved_by = np.hypot(
            affine[0, 0] * xs + affine[0, 1] * ys + affine[0, 2] - xs,
            affine[1, 0] * xs + affine[1, 1] * ys + affine[1, 2] - ys,
        )
        far = moved_by >= float(self.min_offset)
        min_std = float(self.min_std)
        textured = std_image >= min_std
        target_map = zncc_target * (valid_fwd & far & textured & (std_fwd >= min_std))
        source_map = zncc_source * (valid_bwd & far & textured & (std_bwd >= min_std))
        target = self._regions_with_points(target_map, inliers[:, 2:])
        source = self._regions_with_points(source_map, inliers[:, :2])
        if not target.any() or not source.any():
            return None
        # Roles: on the unblurred pixels, source -> target reproduces the copy (one resampling)
        # better than target -> source (two). A positive margin confirms the RANSAC direction.
        margin = float(zncc_target[target].mean() - zncc_source[source].mean())
        if margin < 0:
            affine, source, target = inverse, target, source
            zncc_target, zncc_source = zncc_source, zncc_target
        correlation = np.zeros_like(gray)
        correlation[target] = np.clip(zncc_target[target], 0.0, 1.0)
        correlation[source] = np.maximum(correlation[source], np.clip(zncc_source[source], 0, 1))
        return CopyMatch(affine, len(inliers), source, target, correlation, abs(margin))

    def _regions_with_points(self, correlation: np.ndarray, points: np.ndarray) -> np.ndarray:
        """Connected regions of high ZNCC (cleaned) holding at least one inlier keypoint."""
        cv2 = _require_cv2()
        high = correlation >= float(self.correlation)
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))
        high = cv2.morphologyEx(high.astype(np.uint8), cv2.MORPH_OPEN, kernel)
        high = cv2.morphologyEx(high, cv2.MORPH_CLOSE, kernel).astype(bool)
        labels, count = ndimage.label(high)
        if count == 0:
            return np.zeros_like(high)
        height, width = high.shape
        cols = np.clip(np.round(points[:, 0]).astype(int), 0, width - 1)
        rows = np.clip(np.round(points[:, 1]).astype(int), 0, height - 1)
        # A keypoint sits on a corner or blob, maybe just outside a thin region: look around it.
        grown = ndimage.grey_dilation(labels, size=(5, 5))
        hit = {int(v) for v in grown[rows, cols] if v}
        keep = np.isin(labels, sorted(hit))
        min_pixels = float(self.min_region) * high.size
        labels, count = ndimage.label(keep)
        sizes = np.bincount(labels.ravel(), minlength=count + 1)
        keep &= sizes[labels] >= min_pixels
        return ndimage.binary_fill_holes(keep)

    def analyse(self, image: np.ndarray) -> tuple[np.ndarray, list[CopyMatch], float]:
        """Heat map at image resolution, the copies found, and the analysis scale."""
        cv2 = _require_cv2()
        self.check_params()
        check_image(image, self.min_image_side)
        height, width = image.shape[:2]
        scale = min(1.0, int(self.max_side) / max(height, width))
        if scale < 1.0:
            # Bounded memory and time: a 6000x4000 photo is matched at max_side (2048) px,
            # downscaled while still uint8 (the float luma of the full photo is ~100 MB).
            image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        gray = luminance(image).astype(np.float32)
        matches = []
        pairs = self._keypoint_pairs(np.clip(gray, 0, 255).astype(np.uint8))
        for affine, inliers in self._transforms(pairs):
            match = self._verify(gray, affine, inliers)
            if match is not None:
                matches.append(match)
        heat = np.zeros(gray.shape, dtype=np.float32)
        for match in matches:
            np.maximum(heat, match.correlation, out=heat)
        if scale < 1.0:
            heat = cv2.resize(heat, (width, height), interpolation=cv2.INTER_LINEAR)
        return heat, matches, scale

    def predict_heatmap(
        self, image: np.ndarray, *, jpeg_quantization: JpegTables = None
    ) -> np.ndarray:
        return self.analyse(image)[0]

    def image_score(self, heatmap: np.ndarray) -> float:
        """Mean heat (ZNCC) over the duplicated regions, 0 when none was found.

        The heat is 0 outside verified regions, so the default "hottest 1 %" would dilute a
        small copy (under 1 % of the image) with zeros and let the image threshold drop it.
        """
        hot = heatmap[heatmap > 0]
        return float(hot.mean()) if hot.size else 0.0

    def localize(self, image: np.ndarray, *, jpeg_quantization: JpegTables = None) -> Localization:
        """Heat map, mask, score, and ``regions`` naming each copy's source and target."""
        heat, matches, scale = self.analyse(image)
        regions: list[dict[str, Any]] = []
        for index, match in enumerate(matches):
            for role, region in (("source", match.source), ("target", match.target)):
                ys, xs = np.nonzero(region)
                bbox = [ys.min(), xs.min(), ys.max() + 1, xs.max() + 1]
                regions.append(
                    {
                        "bbox": [round(float(v) / scale) for v in bbox],
                        "role": role,
                        "copy": index,
                        "pixels": round(float(region.sum()) / scale**2),
                        "score": float(match.correlation[region].mean()),
                    }
                )
        copies = [
            {
                "affine_source_to_target": (
                    match.affine * np.array([[1, 1, 1 / scale], [1, 1, 1 / scale]])
                ).tolist(),
                "inliers": match.inliers,
                "role_margin": round(match.direction_margin, 4),
            }
            for match in matches
        ]
        result = self.build_localization(heat, regions=regions, details={"copies": copies})
        if not result.mask.any():
            # Below the image threshold the mask is emptied; the named regions go with it.
            result.regions = []
        return result

    # -- persistence: nothing learned --------------------------------------------------------
    def _weights(self) -> dict[str, np.ndarray]:
        return {}

    def _set_weights(self, weights: dict[str, np.ndarray], state: dict[str, Any]) -> None:
        return None
