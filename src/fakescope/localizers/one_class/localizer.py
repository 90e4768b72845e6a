"""One-class localization: learn what pristine noise residuals look like, flag what does not.

Trained on pristine images only (no forgery is ever seen), following the one-class idea of the
satellite-imagery forgery work: model the distribution of local features of pristine images and
report the regions that are anomalous under it.

Features (:func:`block_features`), per 32x32 block every 16 px, from the SRM noise residuals of
the luma (:func:`fakescope.features.residuals.srm_residuals`):

- log variance of each of the three residuals: an inpainted or upscaled region is smoother
  than camera noise, a splice brings another camera's noise level;
- log kurtosis of each: clipped camera noise is close to Gaussian, interpolated or synthesised
  texture is not;
- lag-1 horizontal and vertical autocorrelation of each: resampling (rotated or scaled
  copies, warps) correlates neighbouring residuals, camera noise is nearly white;
- JPEG-grid strength: energy of the first-order differences across 8x8 block borders against
  all of them, horizontally and vertically. A region pasted or resampled from elsewhere loses
  the photo's grid alignment.
- optionally (``content=True``) the block's brightness, contrast and blurred gradient energy,
  so that the covariance can tie the expected noise to the content.

Scoring. Photos differ in noise level far more than a forged block differs from its own photo,
so by default (``relative=True``) each block's features are centred on the median over the
image's blocks before the Gaussian model (mean + Ledoit-Wolf shrunk covariance, fitted on the
centred pristine blocks) gives a squared Mahalanobis distance. That distance becomes a tail
score ``t = -log10 P(pristine block distance >= d)`` through a quantile table of the training
blocks' distances, and the heat is ``t / 4`` clipped to [0, 1]: heat 0.5 is a block as unusual
as the 1 % most unusual pristine training blocks. The threshold (:meth:`calibrate_pristine`)
is the heat that flags 1 % of the pixels of held-out pristine images. Nothing here looks at a
forgery; :meth:`Localizer.calibrate` (which maximises F1 on forgery masks) is available but the
bundled model does not use it.

Memory: features are accumulated over 16 px cells strip by strip (256 rows at a time), so a
6000x4000 photo needs a few float32 strips plus a small per-cell table.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Self

import numpy as np
from scipy import ndimage

from fakescope.errors import NotFittedError
from fakescope.features.residuals import luminance, srm_residuals
from fakescope.localizers.base import JpegTables, Localizer, check_images_masks

#: Names of the block features, in column order.
FEATURE_NAMES = (
    *(f"log_variance_{c}" for c in ("edge", "kb", "kv")),
    *(f"log_kurtosis_{c}" for c in ("edge", "kb", "kv")),
    *(f"autocorr_x_{c}" for c in ("edge", "kb", "kv")),
    *(f"autocorr_y_{c}" for c in ("edge", "kb", "kv")),
    "jpeg_grid_x",
    "jpeg_grid_y",
    "mean_luma",
    "log_content_std",
    "log_content_gradient",
)
#: Features describing content, not noise: the model conditions the noise features on them.
CONTENT_FEATURES = ("mean_luma", "log_content_std", "log_content_gradient")
#: Tail score (-log10 of the pristine tail probability) that maps to heat 1.
TAIL_AT_FULL_HEAT = 4.0
#: Rows of the image processed at once when accumulating cell sums.
STRIP_ROWS = 256
# Rows above/below a strip that the 5x5 SRM kernels, the lag-1 products and the content
# blur (sigma 1.5, truncated at 4 sigma) need.
_HALO = 8
_CONTENT_SIGMA = 1.5
_EPS = 1e-6
_CLIP = 3.0
_GRID = 8


def _cell_edges(length: int, cell: int) -> np.ndarray:
    return np.arange(0, length, cell)


def _reduce_cells(values: np.ndarray, row_edges: np.ndarray, col_edges: np.ndarray) -> np.ndarray:
    """Sum of ``values`` (h, w) over each cell of the grid (ragged last row/column allowed)."""
    return np.add.reduceat(
        np.add.reduceat(values.astype(np.float64, copy=False), row_edges, axis=0),
        col_edges,
        axis=1,
    )


def cell_sums(image: np.ndarray, cell: int) -> np.ndarray:
    """Per-cell sums of the per-pixel statistics the block features need: (ny, nx, 20).

    Columns: pixel count; for each residual c: sum r, r^2, r^4, r(x) r(x+1), r(y) r(y+1);
    then the squared first-order differences horizontally and vertically, those across 8x8
    borders, and the counts of border positions; then luma, luma squared and the gradient
    energy of the blurred luma.
    """
    height, width = image.shape[:2]
    col_edges = _cell_edges(width, cell)
    strip = max(cell, STRIP_ROWS // cell * cell)
    border_x = (np.arange(width) % _GRID == _GRID - 1)[None, :]
    out = []
    for y0 in range(0, height, strip):
        y1 = min(height, y0 + strip)
        top, bottom = max(0, y0 - _HALO), min(height, y1 + _HALO)
        residuals = srm_residuals(image[top:bottom], clip=_CLIP)
        gray = luminance(image[top:bottom])
        inner = slice(y0 - top, y1 - top)
        rows = y1 - y0
        row_edges = _cell_edges(rows, cell)
        maps: list[np.ndarray] = [np.ones((rows, width), dtype=np.float32)]
        for c in range(3):
            r = residuals[..., c]
            ri = r[inner]
            prod_x = np.zeros_like(ri)
            prod_x[:, :-1] = ri[:, :-1] * ri[:, 1:]
            # The row below the strip is in the halo, except at the image's last row.
            below = r[y0 - top + 1 : y1 - top + 1]
            prod_y = np.zeros_like(ri)
            prod_y[: below.shape[0]] = ri[: below.shape[0]] * below
            squared = ri * ri
            maps += [ri, squared, squared * squared, prod_x, prod_y]
        diff_x = np.zeros((rows, width), dtype=np.float32)
        diff_x[:, :-1] = np.clip(np.diff(gray[inner], axis=1), -_CLIP, _CLIP) ** 2
        diff_y = np.zeros((rows, width), dtype=np.float32)
        below_gray = gray[y0 - top + 1 : y1 - top + 1]
        n_below = below_gray.shape[0]
        diff_y[:n_below] = np.clip(below_gray - gray[inner][:n_below], -_CLIP, _CLIP) ** 2
        border_y = ((np.arange(y0, y1) % _GRID) == _GRID - 1)[:, None]
        border_x_full = np.broadcast_to(border_x, (rows, width)).astype(np.float32)
        border_y_full = np.broadcast_to(border_y, (rows, width)).astype(np.float32)
        maps += [diff_x, diff_y, diff_x * border_x_full, diff_y * border_y_full]
        maps += [border_x_full, border_y_full]
        # Content: brightness, contrast and the gradient energy of a blurred copy (the blur
        # removes the noise), so that the model learns how much noise each content should have.
        luma = gray[inner]
        smooth = ndimage.gaussian_filter(gray, _CONTENT_SIGMA, mode="reflect")[inner]
        grad_y, grad_x = np.gradient(smooth)
        maps += [luma, luma * luma, grad_x * grad_x + grad_y * grad_y]
        out.append(np.stack([_reduce_cells(m, row_edges, col_edges) for m in maps], axis=-1))
    return np.concatenate(out, axis=0)


def _axis_weights(cells: int, cell: int, length: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bilinear sampling of ``cells`` values whose centres sit at ``cell/2 + k*cell``."""
    position = np.clip((np.arange(length) + 0.5) / cell - 0.5, 0.0, cells - 1)
    low = np.floor(position).astype(np.int64)
    high = np.minimum(low + 1, cells - 1)
    return low, high, (position - low).astype(np.float32)


def upsample_cells(cells: np.ndarray, cell: int, height: int, width: int) -> np.ndarray:
    """A (ny, nx) grid of per-cell values, bilinearly upsampled to (height, width).

    Separable and float32, so a 6000x4000 map costs two passes over rows, not OpenCV.
    """
    y_low, y_high, y_weight = _axis_weights(cells.shape[0], cell, height)
    x_low, x_high, x_weight = _axis_weights(cells.shape[1], cell, width)
    rows = cells[:, x_low] * (1.0 - x_weight) + cells[:, x_high] * x_weight
    return rows[y_low] * (1.0 - y_weight[:, None]) + rows[y_high] * y_weight[:, None]


def block_features(sums: np.ndarray) -> np.ndarray:
    """Features of each 2x2-cell block from :func:`cell_sums`: (ny - 1, nx - 1, 17)."""
    blocks = sums[:-1, :-1] + sums[1:, :-1] + sums[:-1, 1:] + sums[1:, 1:]
    count = blocks[..., 0]
    features = []
    log_var, log_kurt, auto_x, auto_y = [], [], [], []
    for c in range(3):
        s1, s2, s4, sx, sy = (blocks[..., 1 + 5 * c + k] for k in range(5))
        mean = s1 / count
        second = s2 / count
        variance = np.maximum(second - mean * mean, 0.0)
        log_var.append(np.log(variance + 1e-3))
        log_kurt.append(np.log((s4 / count + _EPS) / (second * second + _EPS)))
        auto_x.append(sx / (s2 + _EPS))
        auto_y.append(sy / (s2 + _EPS))
    features += log_var + log_kurt + auto_x + auto_y
    diff_x, diff_y, border_dx, border_dy, n_border_x, n_border_y = (
        blocks[..., 16 + k] for k in range(6)
    )
    grid_x = np.log((border_dx / np.maximum(n_border_x, 1) + 0.01) / (diff_x / count + 0.01))
    grid_y = np.log((border_dy / np.maximum(n_border_y, 1) + 0.01) / (diff_y / count + 0.01))
    features += [grid_x, grid_y]
    luma_sum, luma_squares, gradient = (blocks[..., 22 + k] for k in range(3))
    luma_mean = luma_sum / count
    luma_var = np.maximum(luma_squares / count - luma_mean * luma_mean, 0.0)
    features += [
        luma_mean / 255.0,
        np.log(np.sqrt(luma_var) + 1.0),
        np.log(gradient / count + 0.01),
    ]
    return np.stack(features, axis=-1).astype(np.float64)


class OneClassLocalizer(Localizer):
    """Gaussian model of pristine block features; heat = how unusual each block is.

    Parameters
    ----------
    cell:
        Block stride in pixels; blocks are 2x2 cells (32x32 px with the default 16).
    relative:
        Centre each image's block features on their median before scoring (default), so a
        block is judged against its own photo's noise rather than against all photos.
    content:
        Add the three content features (brightness, contrast, blurred gradient energy), so
        the Gaussian's covariance ties the expected noise to the content. Off by default: on
        the calibration split it changed nothing measurable (README), so the simpler model
        of the 14 noise features alone is kept.
    max_blocks:
        Training blocks drawn (seeded) from all pristine images for the covariance fit.
    random_state:
        Seed of that draw.
    """

    name = "one-class"
    min_image_side: ClassVar[int] = 32
    weights_format: ClassVar[str] = "safetensors"
    default_threshold: ClassVar[float] = 0.5

    def __init__(
        self,
        cell: int = 16,
        relative: bool = True,
        content: bool = False,
        max_blocks: int = 200_000,
        random_state: int = 0,
    ) -> None:
        self.cell = cell
        self.relative = relative
        self.content = content
        self.max_blocks = max_blocks
        self.random_state = random_state

    def check_params(self) -> None:
        if not 4 <= int(self.cell) <= 128:
            raise ValueError(f"cell must be in [4, 128] pixels, got {self.cell}")
        if int(self.max_blocks) < 100:
            raise ValueError(f"max_blocks must be at least 100, got {self.max_blocks}")

    # -- features ----------------------------------------------------------------------------
    @property
    def feature_names(self) -> list[str]:
        if self.content:
            return list(FEATURE_NAMES)
        return [name for name in FEATURE_NAMES if name not in CONTENT_FEATURES]

    def features(self, image: np.ndarray) -> np.ndarray:
        """Block features of one image, centred per image when ``relative``: (by, bx, 17)."""
        cell = int(self.cell)
        if min(image.shape[:2]) < 2 * cell:
            from fakescope.errors import ImageTooSmallError

            raise ImageTooSmallError(
                f"image is {image.shape[1]}x{image.shape[0]}; the one-class model needs sides "
                f"of at least {2 * cell} px (one block)"
            )
        features = block_features(cell_sums(image, cell))
        if not self.content:
            features = features[..., : len(FEATURE_NAMES) - len(CONTENT_FEATURES)]
        if self.relative:
            features = features - np.median(features.reshape(-1, features.shape[-1]), axis=0)
        return features

    # -- fitting -----------------------------------------------------------------------------
    def fit(
        self,
        images: Sequence[np.ndarray],
        masks: Sequence[np.ndarray | None],
        on_progress: Callable[[int, int], None] | None = None,
    ) -> Self:
        """Fit the pristine model; every mask must be None or all False (ValueError otherwise).

        Sets the Gaussian (mean, shrunk precision) and the tail table of pristine block
        distances. The threshold stays at 0.5 (the 1 % tail of training blocks) until
        :meth:`calibrate_pristine` sets it from held-out pristine images.
        """
        from sklearn.covariance import LedoitWolf

        self.check_params()
        truths = check_images_masks(images, masks)
        for index, truth in enumerate(truths):
            if truth.any():
                raise ValueError(
                    f"the one-class model trains on pristine images only, but mask {index} "
                    f"marks {int(truth.sum())} tampered pixels"
                )
        rows = []
        for index, image in enumerate(images):
            rows.append(self.features(image).reshape(-1, len(self.feature_names)))
            if on_progress is not None:
                on_progress(index + 1, len(images))
        table = np.concatenate(rows, axis=0)
        rng = np.random.default_rng(int(self.random_state))
        if len(table) > int(self.max_blocks):
            table = table[rng.choice(len(table), int(self.max_blocks), replace=False)]
        estimator = LedoitWolf().fit(table)
        self.mean_ = estimator.location_.astype(np.float64)
        self.precision_ = estimator.precision_.astype(np.float64)
        self.shrinkage_ = float(estimator.shrinkage_)
        distances = self._distances(table)
        # Tail levels from t = 0 (all blocks) to where at least ~20 blocks remain beyond.
        t_max = max(1.0, np.log10(len(distances) / 20.0))
        self.tail_levels_ = np.linspace(0.0, t_max, 64)
        quantiles = 1.0 - 10.0 ** (-self.tail_levels_)
        self.tail_log_distance_ = np.log(np.quantile(distances, quantiles) + _EPS)
        self.n_training_blocks_ = len(table)
        return self

    def calibrate_pristine(
        self, images: Sequence[np.ndarray], false_positive_rate: float = 0.01
    ) -> Self:
        """Threshold = the heat that flags ``false_positive_rate`` of these pristine pixels.

        Use pristine images held out from :meth:`fit` (other photos): no forgery involved.
        """
        if not 0.0 < false_positive_rate < 1.0:
            raise ValueError(f"false_positive_rate must be in (0, 1), got {false_positive_rate}")
        if not images:
            raise ValueError("calibrate_pristine needs at least one image")
        # A fixed-size sample per image keeps memory flat and weighs images equally.
        rng = np.random.default_rng(int(self.random_state))
        samples = []
        for image in images:
            heat = self.predict_heatmap(image).ravel()
            samples.append(rng.choice(heat, min(heat.size, 4096), replace=False))
        self.threshold_ = float(np.quantile(np.concatenate(samples), 1.0 - false_positive_rate))
        self.threshold_ = min(max(self.threshold_, 1e-3), 1.0)
        return self

    # -- scoring -----------------------------------------------------------------------------
    def _require_fitted(self) -> None:
        if getattr(self, "precision_", None) is None:
            raise NotFittedError("the one-class localizer must be fitted (or loaded) first")

    def _distances(self, table: np.ndarray) -> np.ndarray:
        centred = table - self.mean_
        return np.einsum("ij,jk,ik->i", centred, self.precision_, centred)

    def tail_score(self, distances: np.ndarray) -> np.ndarray:
        """``-log10`` of the share of pristine training blocks at least this far out.

        Beyond the table the last segments' slope extrapolates (log-distance to log-tail).
        """
        self._require_fitted()
        log_d = np.log(np.asarray(distances, dtype=np.float64) + _EPS)
        knots, levels = self.tail_log_distance_, self.tail_levels_
        score = np.interp(log_d, knots, levels)
        span = max(knots[-1] - knots[-9], _EPS)
        slope = (levels[-1] - levels[-9]) / span
        beyond = log_d > knots[-1]
        score[beyond] = levels[-1] + slope * (log_d[beyond] - knots[-1])
        return np.maximum(score, 0.0)

    def block_heat(self, image: np.ndarray) -> np.ndarray:
        """Heat of each block, (by, bx), in [0, 1]."""
        self._require_fitted()
        features = self.features(image)
        shape = features.shape[:2]
        distances = self._distances(features.reshape(-1, features.shape[-1]))
        tails = self.tail_score(distances).reshape(shape)
        return np.clip(tails / TAIL_AT_FULL_HEAT, 0.0, 1.0)

    def predict_heatmap(
        self, image: np.ndarray, *, jpeg_quantization: JpegTables = None
    ) -> np.ndarray:
        blocks = self.block_heat(image)
        # Each cell's heat: the mean of the (up to four) blocks covering it.
        padded = np.pad(blocks, 1, mode="constant")
        counts = np.pad(np.ones_like(blocks), 1, mode="constant")
        cell_total = padded[:-1, :-1] + padded[1:, :-1] + padded[:-1, 1:] + padded[1:, 1:]
        cell_count = counts[:-1, :-1] + counts[1:, :-1] + counts[:-1, 1:] + counts[1:, 1:]
        cells = (cell_total / np.maximum(cell_count, 1)).astype(np.float32)
        height, width = image.shape[:2]
        cell = int(self.cell)
        full = upsample_cells(cells, cell, height, width)
        return np.clip(full, 0.0, 1.0)

    # -- persistence -------------------------------------------------------------------------
    def _weights(self) -> dict[str, np.ndarray]:
        self._require_fitted()
        return {
            "mean": self.mean_.astype(np.float64),
            "precision": self.precision_.astype(np.float64),
            "tail_levels": self.tail_levels_.astype(np.float64),
            "tail_log_distance": self.tail_log_distance_.astype(np.float64),
        }

    def _set_weights(self, weights: dict[str, np.ndarray], state: dict[str, Any]) -> None:
        from fakescope.errors import ModelError

        missing = {"mean", "precision", "tail_levels", "tail_log_distance"} - set(weights)
        if missing:
            raise ModelError(f"one-class weights lack {sorted(missing)}")
        n = len(self.feature_names)
        if weights["mean"].shape != (n,) or weights["precision"].shape != (n, n):
            raise ModelError("one-class weights do not match the feature set of this version")
        self.mean_ = np.asarray(weights["mean"], dtype=np.float64)
        self.precision_ = np.asarray(weights["precision"], dtype=np.float64)
        self.tail_levels_ = np.asarray(weights["tail_levels"], dtype=np.float64)
        self.tail_log_distance_ = np.asarray(weights["tail_log_distance"], dtype=np.float64)
        self.shrinkage_ = float(state.get("shrinkage", 0.0))
        self.n_training_blocks_ = int(state.get("n_training_blocks", 0))

    def _state(self) -> dict[str, Any]:
        return {
            "shrinkage": float(getattr(self, "shrinkage_", 0.0)),
            "n_training_blocks": int(getattr(self, "n_training_blocks_", 0)),
            "feature_names": self.feature_names,
        }
