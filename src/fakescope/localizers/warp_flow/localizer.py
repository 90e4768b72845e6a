"""Warp detection and reversal (the FALdetector idea, Wang et al. ICCV 2019).

A network (:class:`~fakescope.localizers.warp_flow.network.FlowUNet`) predicts, from the warped
image alone, the backward flow of a local warp in the forge convention
``forged(y, x) = original(y + dy, x + dx)``. The heat map is its mask head; :meth:`undo` applies
the inverse of the predicted flow to suggest the un-warped original.

The inverse. With ``forged = original o (id + f)``, the original at ``q`` is the forged image
at the point ``p`` with ``p + f(p) = q``, i.e. ``p = q + g(q)`` where ``g(q) = -f(q + g(q))``.
:func:`invert_flow` solves that by Newton's method (a plain fixed-point iteration diverges where
a strong pinch compresses content, ``|grad f| > 1``), and :func:`unwarp` resamples with it.
Predicted flows below ``flow_threshold_px`` are shrunk to exactly zero first, so pixels the
network considers untouched keep their bytes.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Self

import numpy as np

from fakescope.localizers.base import JpegTables, Localizer, check_image, check_images_masks
from fakescope.localizers.tiling import tiled_map
from fakescope.localizers.warp_flow.views import check_views
from fakescope.results import Localization

#: Newton iterations for the flow inverse (it converges in a handful on smooth warps).
INVERSION_ITERATIONS = 12
#: Rows inverted and resampled at a time (plus a margin of the flow's reach): memory follows
#: the strip, not the image, when a flow is predicted all over a large photo.
STRIP_ROWS = 512


def _require_cv2() -> Any:
    from fakescope.data.forge.base import require_cv2

    return require_cv2()


def _row_strips(start: int, stop: int, rows: int) -> Iterator[tuple[int, int]]:
    """``[top, bottom)`` row ranges of at most ``rows`` rows covering ``[start, stop)``."""
    step = max(1, rows)
    for top in range(start, stop, step):
        yield top, min(stop, top + step)


def invert_flow(
    flow: np.ndarray, iterations: int = INVERSION_ITERATIONS, strip_rows: int = STRIP_ROWS
) -> np.ndarray:
    """The backward map ``g`` undoing ``flow``: float32 (H, W, 2) with ``g(q) = -f(q + g(q))``.

    Solved by Newton's method on ``h(g) = g + f(q + g)``, whose Jacobian is ``I + grad f``:
    a plain fixed-point iteration ``g <- -f(q + g)`` only converges where ``|grad f| < 1``, and
    a strong pinch compresses content by more than that. Where ``I + grad f`` is near-singular
    (a fold, which has no inverse) the step falls back to a damped fixed-point one. Only the
    bounding box of the non-zero flow is worked on, ``strip_rows`` rows at a time with a margin
    of the flow's reach (``g(q)`` only reads ``f`` within that reach of ``q``), so memory
    follows the strip, not the image; where ``flow`` is zero in a neighbourhood, ``g`` is
    exactly zero too.
    """
    flow = np.asarray(flow, dtype=np.float32)
    inverse = np.zeros_like(flow)
    moving = (flow[..., 0] != 0) | (flow[..., 1] != 0)
    if not moving.any():
        return inverse
    reach = int(np.ceil(np.hypot(flow[..., 0], flow[..., 1]).max())) + 2
    rows, cols = np.flatnonzero(moving.any(axis=1)), np.flatnonzero(moving.any(axis=0))
    height, width = flow.shape[:2]
    y0, y1 = max(0, rows[0] - reach), min(height, rows[-1] + 1 + reach)
    x0, x1 = max(0, cols[0] - reach), min(width, cols[-1] + 1 + reach)
    margin = reach + 4
    for top, bottom in _row_strips(y0, y1, strip_rows):
        low, high = max(y0, top - margin), min(y1, bottom + margin)
        window = _invert_window(np.ascontiguousarray(flow[low:high, x0:x1]), iterations)
        inverse[top:bottom, x0:x1] = window[top - low : bottom - low]
    return inverse


def _invert_window(flow: np.ndarray, iterations: int) -> np.ndarray:
    cv2 = _require_cv2()
    height, width = flow.shape[:2]
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    # d(dy)/dy, d(dy)/dx, d(dx)/dy, d(dx)/dx, sampled together with the flow.
    grad_dy = np.gradient(flow[..., 0])
    grad_dx = np.gradient(flow[..., 1])
    fields = np.ascontiguousarray(
        np.stack([flow[..., 0], flow[..., 1], *grad_dy, *grad_dx], axis=-1), dtype=np.float32
    )

    def sample(at: np.ndarray) -> np.ndarray:
        # Bilinear samples at q + g(q); outside the window the flow is taken as the edge's.
        channels = [
            cv2.remap(
                np.ascontiguousarray(fields[..., index : index + 4]),
                xx + at[..., 1],
                yy + at[..., 0],
                interpolation=cv2.INTER_LINEAR,
                borderMode=cv2.BORDER_REPLICATE,
            )
            for index in (0, 4)
        ]
        return np.concatenate(channels, axis=-1)

    inverse = -flow.copy()
    for _ in range(iterations):
        sampled = sample(inverse)
        residual_y = inverse[..., 0] + sampled[..., 0]
        residual_x = inverse[..., 1] + sampled[..., 1]
        a, b = 1.0 + sampled[..., 2], sampled[..., 3]
        c, d = sampled[..., 4], 1.0 + sampled[..., 5]
        det = a * d - b * c
        regular = det > 0.05
        safe = np.where(regular, det, 1.0)
        step_y = np.where(regular, (d * residual_y - b * residual_x) / safe, 0.5 * residual_y)
        step_x = np.where(regular, (a * residual_x - c * residual_y) / safe, 0.5 * residual_x)
        # Bound each step: a wild Newton step near a fold must not throw g out of the window.
        step_y = np.clip(step_y, -4.0, 4.0)
        step_x = np.clip(step_x, -4.0, 4.0)
        inverse[..., 0] -= step_y
        inverse[..., 1] -= step_x
    # Exactly zero where the flow is zero all around (no rounding noise in untouched areas).
    sampled = sample(inverse)
    still = (
        (sampled[..., 0] == 0) & (sampled[..., 1] == 0) & (flow[..., 0] == 0) & (flow[..., 1] == 0)
    )
    inverse[still] = 0.0
    return inverse.astype(np.float32, copy=False)


def unwarp(
    image: np.ndarray,
    flow: np.ndarray,
    iterations: int = INVERSION_ITERATIONS,
    strip_rows: int = STRIP_ROWS,
) -> np.ndarray:
    """The suggested original of ``image`` warped by ``flow`` (forge convention), uint8 RGB.

    Pixels where the inverse map is exactly zero are copied byte for byte. Resampled
    ``strip_rows`` rows at a time, like the inversion.
    """
    cv2 = _require_cv2()
    if flow.shape != (*image.shape[:2], 2):
        raise ValueError(f"flow {flow.shape} does not match image {image.shape[:2]}")
    inverse = invert_flow(flow, iterations, strip_rows)
    moved = (inverse[..., 0] != 0) | (inverse[..., 1] != 0)
    if not moved.any():
        return image.copy()
    restored = image.copy()
    rows, cols = np.flatnonzero(moved.any(axis=1)), np.flatnonzero(moved.any(axis=0))
    y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    for top, bottom in _row_strips(y0, y1, strip_rows):
        yy, xx = np.mgrid[top:bottom, x0:x1].astype(np.float32)
        # Sampling the whole image (not a crop) so the reflected border is the image's own.
        window = cv2.remap(
            image,
            xx + inverse[top:bottom, x0:x1, 1],
            yy + inverse[top:bottom, x0:x1, 0],
            interpolation=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REFLECT_101,
        )
        inside = moved[top:bottom, x0:x1]
        restored[top:bottom, x0:x1][inside] = window[inside]
    return restored


def shrink_flow(flow: np.ndarray, threshold_px: float) -> np.ndarray:
    """``flow`` with magnitudes below ``threshold_px`` set to exactly zero, ramping back to the
    full value at twice the threshold (continuous, so the undo shows no seam)."""
    if threshold_px <= 0:
        return flow.astype(np.float32, copy=True)
    magnitude = np.hypot(flow[..., 0], flow[..., 1])
    gain = np.clip((magnitude - threshold_px) / threshold_px, 0.0, 1.0)
    return (flow * gain[..., None]).astype(np.float32)


def psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float:
    """PSNR in dB between two uint8 images (over ``mask`` if given); 100 when identical."""
    diff = a.astype(np.float64) - b.astype(np.float64)
    if mask is not None:
        diff = diff[mask]
    mse = float(np.mean(diff**2)) if diff.size else 0.0
    return 100.0 if mse <= 1e-10 else float(10.0 * np.log10(255.0**2 / mse))


# -- training data -------------------------------------------------------------------------------
def _dihedral(
    image: np.ndarray, flow: np.ndarray, mask: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A random flip / transpose of a warp example with its flow transformed to match.

    Flips keep the 8x8 grid's phase on sides that are multiples of 8 (the benchmark's tiles);
    the flow's component along a flipped axis changes sign, a transpose swaps dy and dx.
    """
    flow = flow.copy()
    if rng.random() < 0.5:
        image, flow, mask = image[:, ::-1], flow[:, ::-1], mask[:, ::-1]
        flow[..., 1] *= -1
    if rng.random() < 0.5:
        image, flow, mask = image[::-1], flow[::-1], mask[::-1]
        flow[..., 0] *= -1
    if rng.random() < 0.5:
        image, flow, mask = image.transpose(1, 0, 2), flow.transpose(1, 0, 2), mask.T
        flow = flow[..., ::-1]
    return (
        np.ascontiguousarray(image),
        np.ascontiguousarray(flow, dtype=np.float32),
        np.ascontiguousarray(mask),
    )


class WarpFlowLocalizer(Localizer):
    """Predicts a local warp's flow; heat map from the mask head; :meth:`undo` reverses it.

    Parameters: ``width``, ``depth``, ``cell`` (the U-Net's base channels, levels and the
    pixel-unshuffle cell), ``steps``, ``batch_size``, ``learning_rate`` (AdamW, cosine decay),
    ``crop_size`` (training crop, a multiple of ``cell * 2**depth``), ``synthetic_share`` and
    ``pristine_share`` (shares of each batch that are on-the-fly warps of pristine images and
    untouched pristine images; the rest are the given warps with their flows),
    ``flow_threshold_px`` (predicted flows below it count as none), ``mask_loss_weight`` (of the
    mask head's BCE against the flow's endpoint error), ``resampling_cues`` (add the noise
    correlation channels of :func:`~fakescope.localizers.warp_flow.network.resampling_cues`,
    which tell stretched from compressed content), ``test_time_views`` (1, 2, 4 or 8: predict
    on that many flips / transposes of each tile and merge them by ``view_combine``, "mean" or
    "median"; the views' errors differ, so merging removes much of one view's wrong flow, at
    ``test_time_views`` times the cost), ``tile`` / ``overlap`` (inference tiling),
    ``random_state``, ``threads`` (torch threads, 0: torch's default) and ``warm_start`` (``fit``
    goes on training the current network instead of a new one).
    """

    name = "warp-flow"
    min_image_side = 32

    def __init__(
        self,
        width: int = 32,
        depth: int = 3,
        cell: int = 4,
        steps: int = 1200,
        batch_size: int = 8,
        learning_rate: float = 2e-3,
        crop_size: int = 224,
        synthetic_share: float = 0.5,
        pristine_share: float = 0.15,
        flow_threshold_px: float = 0.4,
        mask_loss_weight: float = 1.0,
        resampling_cues: bool = True,
        test_time_views: int = 1,
        view_combine: str = "median",
        tile: int = 512,
        overlap: int = 64,
        random_state: int = 0,
        threads: int = 0,
        warm_start: bool = False,
    ) -> None:
        self.width = width
        self.depth = depth
        self.cell = cell
        self.steps = steps
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.crop_size = crop_size
        self.synthetic_share = synthetic_share
        self.pristine_share = pristine_share
        self.flow_threshold_px = flow_threshold_px
        self.mask_loss_weight = mask_loss_weight
        self.resampling_cues = resampling_cues
        self.test_time_views = test_time_views
        self.view_combine = view_combine
        self.tile = tile
        self.overlap = overlap
        self.random_state = random_state
        self.threads = threads
        self.warm_start = warm_start

    # -- parameters --------------------------------------------------------------------------
    def check_params(self) -> None:
        for name in ("width", "depth", "cell", "steps", "batch_size", "crop_size", "tile"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.depth > 6:
            raise ValueError(f"depth must be at most 6, got {self.depth}")
        if self.crop_size % self._multiple():
            raise ValueError(
                f"crop_size must be a multiple of cell * 2**depth = {self._multiple()}, "
                f"got {self.crop_size}"
            )
        if not 0 < self.learning_rate < 1:
            raise ValueError(f"learning_rate must be in (0, 1), got {self.learning_rate}")
        for name in ("synthetic_share", "pristine_share"):
            value = getattr(self, name)
            if not 0 <= value <= 1:
                raise ValueError(f"{name} must be in [0, 1], got {value}")
        if self.synthetic_share + self.pristine_share > 1:
            raise ValueError("synthetic_share + pristine_share must be at most 1")
        if not 0 <= self.flow_threshold_px < 100:
            raise ValueError(f"flow_threshold_px must be in [0, 100), got {self.flow_threshold_px}")
        if not 0 <= self.mask_loss_weight <= 100:
            raise ValueError(f"mask_loss_weight must be in [0, 100], got {self.mask_loss_weight}")
        check_views(self.test_time_views, self.view_combine)
        if self.tile < 64 or self.tile % 8:
            raise ValueError(f"tile must be a multiple of 8 and at least 64, got {self.tile}")
        if not 0 <= self.overlap < self.tile // 2:
            raise ValueError(f"overlap must be in [0, tile / 2), got {self.overlap}")
        if not isinstance(self.threads, int) or self.threads < 0:
            raise ValueError(f"threads must be a non-negative integer, got {self.threads!r}")

    def _multiple(self) -> int:
        return self.cell * 2**self.depth

    def _new_network(self) -> Any:
        from fakescope.localizers.warp_flow.network import (
            IN_CHANNELS,
            RESAMPLING_CHANNELS,
            FlowUNet,
        )

        channels = IN_CHANNELS + (RESAMPLING_CHANNELS if self.resampling_cues else 0)
        return FlowUNet(width=self.width, depth=self.depth, cell=self.cell, in_channels=channels)

    # -- training ----------------------------------------------------------------------------
    def fit(
        self,
        images: Sequence[np.ndarray],
        masks: Sequence[np.ndarray | None],
        on_progress: Callable[[int, int], None] | None = None,
        *,
        flows: Sequence[np.ndarray | None] | None = None,
        log: Callable[[str], None] | None = None,
    ) -> Self:
        """Train on warps with known ``flows`` plus on-the-fly warps of the pristine images.

        Images whose mask is None or empty are pristine: they are shown untouched (zero flow)
        and warped on the fly by the benchmark's forger (exact flows). Tampered images need
        their flow in ``flows``; those without one (other forgery kinds) are skipped.
        """
        import torch

        from fakescope.data.forge import FORGERIES
        from fakescope.localizers.warp_flow.network import flow_features, grid_offset

        self.check_params()
        bool_masks = check_images_masks(images, masks)
        flows = list(flows) if flows is not None else [None] * len(images)
        if len(flows) != len(images):
            raise ValueError(f"{len(images)} images but {len(flows)} flows")
        pristine: list[np.ndarray] = []
        warps: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        for image, mask, flow in zip(images, bool_masks, flows, strict=True):
            check_image(image, self.crop_size)
            if not mask.any():
                pristine.append(image)
            elif flow is not None:
                flow = np.asarray(flow, dtype=np.float32)
                if flow.shape != (*image.shape[:2], 2):
                    raise ValueError(f"flow {flow.shape} does not match image {image.shape[:2]}")
                warps.append((image, flow, mask))
        if not pristine and not warps:
            raise ValueError("warp-flow needs pristine images or warps with their flows")
        synthetic_share = self.synthetic_share if pristine else 0.0
        pristine_share = self.pristine_share if pristine else 0.0
        if not warps:  # everything comes from the pristine images
            synthetic_share = 1.0 - pristine_share
        forge = FORGERIES["warp"].forge
        rng = np.random.default_rng(self.random_state)
        torch.manual_seed(self.random_state)
        previous_threads = torch.get_num_threads()
        if self.threads:
            torch.set_num_threads(self.threads)
        # warm_start (the scikit-learn convention): go on training the current network.
        previous = getattr(self, "network_", None)
        network = previous if self.warm_start and previous is not None else self._new_network()
        optimizer = torch.optim.AdamW(
            network.parameters(), lr=self.learning_rate, weight_decay=1e-4
        )
        warmup = max(1, self.steps // 20)

        def schedule(step: int) -> float:
            # Linear warm-up (batch norm statistics settle), then cosine decay to zero.
            if step < warmup:
                return (step + 1) / warmup
            return 0.5 * (1.0 + math.cos(math.pi * (step - warmup) / max(1, self.steps - warmup)))

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
        crop = self.crop_size

        def sample() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            draw = rng.random()
            if draw < synthetic_share or draw < synthetic_share + pristine_share:
                source = pristine[int(rng.integers(len(pristine)))]
                source = _random_crop(source, max(crop + 32, 0), rng)
                if draw < synthetic_share:
                    forgery = forge(source, rng)
                    image, flow, mask = forgery.pixels, forgery.flow, forgery.mask
                else:
                    image = source
                    flow = np.zeros((*source.shape[:2], 2), np.float32)
                    mask = np.zeros(source.shape[:2], bool)
            else:
                image, flow, mask = warps[int(rng.integers(len(warps)))]
            image, flow, mask = _dihedral(image, flow, mask, rng)
            height, width = image.shape[:2]
            y0 = int(rng.integers(0, height - crop + 1))
            x0 = int(rng.integers(0, width - crop + 1))
            window = (slice(y0, y0 + crop), slice(x0, x0 + crop))
            return image[window], flow[window], mask[window]

        started = time.monotonic()
        network.train()
        running = 0.0
        for step in range(self.steps):
            inputs, targets, target_masks = [], [], []
            for _ in range(self.batch_size):
                image, flow, mask = sample()
                inputs.append(flow_features(image, grid_offset(image), bool(self.resampling_cues)))
                targets.append(flow.transpose(2, 0, 1))
                target_masks.append(mask)
            x = torch.from_numpy(np.stack(inputs))
            true_flow = torch.from_numpy(np.ascontiguousarray(np.stack(targets)))
            true_mask = torch.from_numpy(np.stack(target_masks).astype(np.float32))
            out = network(x)
            error = torch.linalg.vector_norm(out[:, :2] - true_flow, dim=1)
            # Every pixel counts (predict nothing where nothing moved), the warped ones twice.
            flow_loss = error.mean() + (error * true_mask).sum() / true_mask.sum().clamp(min=1.0)
            mask_loss = torch.nn.functional.binary_cross_entropy_with_logits(out[:, 2], true_mask)
            loss = flow_loss + self.mask_loss_weight * mask_loss
            optimizer.zero_grad()
            loss.backward()
            # Direction-ambiguous warps give large, conflicting flow gradients; bound them.
            torch.nn.utils.clip_grad_norm_(network.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            running = 0.98 * running + 0.02 * float(loss.detach()) if step else float(loss.detach())
            if log is not None and (step % 25 == 0 or step == self.steps - 1):
                elapsed = time.monotonic() - started
                log(
                    f"step {step + 1}/{self.steps} loss {running:.4f} "
                    f"(flow {float(flow_loss.detach()):.3f}, mask {float(mask_loss.detach()):.3f}) "
                    f"{elapsed:.0f}s"
                )
            if on_progress is not None:
                on_progress(step + 1, self.steps)
        network.eval()
        if self.threads:
            torch.set_num_threads(previous_threads)
        self.network_ = network
        self.fit_info_ = {
            "pristine_images": len(pristine),
            "warps_with_flow": len(warps),
            "skipped_without_flow": len(images) - len(pristine) - len(warps),
            "train_seconds": round(time.monotonic() - started, 1),
            "final_loss": round(running, 5),
        }
        return self

    # -- inference ---------------------------------------------------------------------------
    def _require_network(self) -> Any:
        network = getattr(self, "network_", None)
        if network is None:
            from fakescope.errors import ModelError

            raise ModelError("warp-flow localizer is not fitted; call fit or load a saved one")
        return network

    def _predict(self, image: np.ndarray) -> np.ndarray:
        """Float32 (H, W, 3): dy, dx, mask probability; tiled, so memory stays bounded."""
        from fakescope.localizers.warp_flow.network import grid_offset, run_network_views

        check_image(image, self.min_image_side)
        network = self._require_network()
        # The grid phase of the whole image (from its central part, bounded cost); tile
        # origins are multiples of 8, so every tile shares it.
        offset = grid_offset(_centre(image, 2048))
        previous_threads = None
        if self.threads:
            import torch

            previous_threads = torch.get_num_threads()
            torch.set_num_threads(self.threads)
        try:
            return tiled_map(
                image,
                lambda tile: run_network_views(
                    network,
                    tile,
                    offset,
                    bool(self.resampling_cues),
                    views=self.test_time_views,
                    combine=self.view_combine,
                ),
                tile=self.tile,
                overlap=self.overlap,
                channels=3,
            )
        finally:
            if previous_threads is not None:
                import torch

                torch.set_num_threads(previous_threads)

    def predict_flow(self, image: np.ndarray) -> np.ndarray:
        """The predicted backward flow, float32 (H, W, 2) as (dy, dx), forge convention."""
        return np.ascontiguousarray(self._predict(image)[..., :2])

    def predict_heatmap(
        self, image: np.ndarray, *, jpeg_quantization: JpegTables = None
    ) -> np.ndarray:
        return np.clip(self._predict(image)[..., 2], 0.0, 1.0).astype(np.float32)

    def undo_with_flow(self, image: np.ndarray, flow: np.ndarray) -> np.ndarray:
        """``image`` un-warped by a (predicted) ``flow``, after the small-flow shrinkage."""
        return unwarp(image, shrink_flow(flow, self.flow_threshold_px))

    def undo(self, image: np.ndarray) -> np.ndarray:
        """The suggested un-warped original: uint8 RGB, same shape; untouched pixels unchanged."""
        return self.undo_with_flow(image, self.predict_flow(image))

    def localize(self, image: np.ndarray, *, jpeg_quantization: JpegTables = None) -> Localization:
        prediction = self._predict(image)
        flow = np.ascontiguousarray(prediction[..., :2])
        magnitude = np.hypot(flow[..., 0], flow[..., 1])
        return self.build_localization(
            prediction[..., 2],
            flow=flow,
            details={
                "max_flow_px": round(float(magnitude.max()), 3),
                "flow_threshold_px": self.flow_threshold_px,
            },
        )

    # -- persistence -------------------------------------------------------------------------
    def _weights(self) -> dict[str, np.ndarray]:
        network = self._require_network()
        return {
            key: value.detach().cpu().numpy().astype(np.float32)
            for key, value in network.state_dict().items()
            if not key.endswith("num_batches_tracked")
        }

    def _set_weights(self, weights: dict[str, np.ndarray], state: dict[str, Any]) -> None:
        import torch

        from fakescope.errors import ModelError

        network = self._new_network()
        try:
            network.load_state_dict(
                {key: torch.from_numpy(np.asarray(value)) for key, value in weights.items()},
                strict=False,
            )
        except RuntimeError as exc:
            raise ModelError(f"warp-flow weights do not fit the network: {exc}") from exc
        expected = {k for k in network.state_dict() if not k.endswith("num_batches_tracked")}
        if missing := sorted(expected - set(weights)):
            raise ModelError(f"warp-flow weights lack {len(missing)} arrays, e.g. {missing[0]}")
        network.eval()
        self.network_ = network
        self.fit_info_ = dict(state.get("fit_info", {}))
        self.undo_calibration_ = dict(state.get("undo_calibration", {}))

    def _state(self) -> dict[str, Any]:
        return {
            "fit_info": getattr(self, "fit_info_", {}),
            "undo_calibration": getattr(self, "undo_calibration_", {}),
        }


def _random_crop(image: np.ndarray, side: int, rng: np.random.Generator) -> np.ndarray:
    """A ``side`` x ``side`` window at a multiple-of-8 offset (whole axis where shorter)."""
    height, width = image.shape[:2]
    y0 = 8 * int(rng.integers(0, max(0, height - side) // 8 + 1))
    x0 = 8 * int(rng.integers(0, max(0, width - side) // 8 + 1))
    return image[y0 : y0 + side, x0 : x0 + side]


def _centre(image: np.ndarray, side: int) -> np.ndarray:
    """The central window of at most ``side`` px, at a multiple-of-8 offset (keeps the grid)."""
    height, width = image.shape[:2]
    top = max(0, (height - side) // 2) // 8 * 8
    left = max(0, (width - side) // 2) // 8 * 8
    return image[top : top + side, left : left + side]
