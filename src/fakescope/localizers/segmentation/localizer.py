"""Segmentation localizer: a small U-Net on RGB, noise residuals and JPEG cues.

See ``README.md`` in this folder for the method, the training recipe and measured numbers.
Training (:meth:`SegmentationLocalizer.fit`) mixes the given forgeries and pristine images with
forgeries made on the fly from the pristine ones (splice, copy-move, classical inpainting), takes
random crops and flips, JPEG-compresses a share of the samples and passes their tables, and
minimises BCE + Dice on the per-pixel logit. Prediction runs tile by tile
(:func:`~fakescope.localizers.tiling.tiled_map`), so any image size works in bounded memory.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Self

import numpy as np

from fakescope.errors import NotFittedError
from fakescope.localizers.base import (
    JpegTables,
    Localizer,
    check_images_masks,
    top_share_mean,
)
from fakescope.localizers.segmentation.inputs import (
    jpeg_round_trip,
    network_input,
    pad_to_multiple,
)
from fakescope.localizers.tiling import tiled_map

#: Forgery kinds made on the fly from pristine training images (inpaint-learned needs a
#: trained inpainter, warp is left to the benchmark's own samples).
ON_THE_FLY_KINDS = ("splice", "copymove", "inpaint")
#: JPEG qualities drawn for compressed training samples.
JPEG_QUALITY = (60, 98)
#: Share of crops placed over the mask of a tampered image (the rest are uniform).
MASK_CROP_SHARE = 0.7
_DICE_SMOOTH = 1.0


def _require_torch() -> Any:
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - torch is a dependency of the extras
        from fakescope.data.forge import MissingDependencyError

        raise MissingDependencyError(
            "the segmentation localizer needs torch; install the CPU wheel with "
            "`pip install -e '.[torch]'` (torch==2.13.0)"
        ) from exc
    return torch


class SegmentationLocalizer(Localizer):
    """U-Net over RGB + SRM + Bayar-constrained residuals + JPEG cues; see the README."""

    name: ClassVar[str] = "segmentation"
    min_image_side: ClassVar[int] = 16

    def __init__(
        self,
        widths: Sequence[int] = (8, 16, 32, 64, 96),
        bayar_filters: int = 3,
        epochs: int = 8,
        batch_size: int = 16,
        learning_rate: float = 2e-3,
        weight_decay: float = 1e-4,
        crop_size: int = 128,
        on_the_fly: int = 400,
        jpeg_share: float = 0.2,
        jpeg_source_share: float = 0.1,
        use_jpeg_cues: bool = True,
        tile_size: int = 512,
        flip_average: bool = True,
        score_top_share: float = 0.002,
        perturb_share: float = 0.0,
        perturb_specs: Sequence[str] = (),
        random_state: int = 0,
        threads: int = 0,
        warm_start: bool = False,
    ) -> None:
        self.widths = widths
        self.bayar_filters = bayar_filters
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.crop_size = crop_size
        self.on_the_fly = on_the_fly
        self.jpeg_share = jpeg_share
        self.jpeg_source_share = jpeg_source_share
        self.use_jpeg_cues = use_jpeg_cues
        self.tile_size = tile_size
        self.flip_average = flip_average
        self.score_top_share = score_top_share
        self.perturb_share = perturb_share
        self.perturb_specs = perturb_specs
        self.random_state = random_state
        self.threads = threads
        self.warm_start = warm_start

    # -- parameters ----------------------------------------------------------------------------
    @property
    def stride(self) -> int:
        return 2 ** (len(self.widths) - 1)

    def check_params(self) -> None:
        widths = list(self.widths)
        if not widths or any(int(w) != w or w < 1 for w in widths) or len(widths) > 6:
            raise ValueError(f"widths must be 1 to 6 positive integers, got {self.widths!r}")
        if self.bayar_filters < 0:
            raise ValueError(f"bayar_filters must be >= 0, got {self.bayar_filters}")
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not self.learning_rate > 0 or self.weight_decay < 0:
            raise ValueError("learning_rate must be > 0 and weight_decay >= 0")
        # Crops and tiles keep the JPEG 8x8 grid and the U-Net stride.
        multiple = max(8, self.stride)
        if self.crop_size < multiple or self.crop_size % multiple:
            raise ValueError(f"crop_size must be a positive multiple of {multiple}")
        if self.tile_size < 64 or self.tile_size % multiple:
            raise ValueError(f"tile_size must be a multiple of {multiple}, at least 64")
        if self.on_the_fly < 0:
            raise ValueError(f"on_the_fly must be >= 0, got {self.on_the_fly}")
        for name in ("jpeg_share", "jpeg_source_share"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if self.threads < 0:
            raise ValueError(f"threads must be >= 0, got {self.threads}")
        if not 0.0 <= self.perturb_share <= 1.0:
            raise ValueError(f"perturb_share must be in [0, 1], got {self.perturb_share}")
        if self.perturb_share > 0 and not self.perturb_specs:
            raise ValueError("perturb_share > 0 needs perturb_specs, e.g. ['jpeg:60-95']")
        self._perturbations()  # every spec must parse
        if not 0.0 < self.score_top_share <= 1.0:
            raise ValueError(f"score_top_share must be in (0, 1], got {self.score_top_share}")

    def _build(self) -> Any:
        from fakescope.localizers.segmentation.network import SegmentationNet

        return SegmentationNet([int(w) for w in self.widths], int(self.bayar_filters))

    def _perturbations(self) -> list[Any]:
        """``perturb_specs`` parsed into chains (``fakescope.data.perturb``); ValueError if bad."""
        from fakescope.data.perturb import parse_spec

        if isinstance(self.perturb_specs, str):
            raise ValueError("perturb_specs must be a list of specs, not one string")
        return [parse_spec(str(spec)) for spec in self.perturb_specs]

    def _tables(self, tables: JpegTables) -> JpegTables:
        return tables if self.use_jpeg_cues else None

    # -- training ------------------------------------------------------------------------------
    def fit(
        self,
        images: Sequence[np.ndarray],
        masks: Sequence[np.ndarray | None],
        on_progress: Callable[[int, int], None] | None = None,
    ) -> Self:
        """Train from scratch on ``images`` (any sizes >= ``crop_size``) and their masks."""
        self.check_params()
        torch = _require_torch()
        bool_masks = check_images_masks(images, masks)
        for image in images:
            if min(image.shape[:2]) < self.crop_size:
                raise ValueError(
                    f"training images need sides >= crop_size {self.crop_size}, got "
                    f"{image.shape[1]}x{image.shape[0]}"
                )
        if self.threads:
            torch.set_num_threads(int(self.threads))
        torch.manual_seed(self.random_state)
        rng = np.random.default_rng(self.random_state)
        # warm_start (the scikit-learn convention): go on training the current network.
        previous = getattr(self, "net_", None)
        net = previous if self.warm_start and previous is not None else self._build()
        optimiser = torch.optim.AdamW(
            net.parameters(), lr=self.learning_rate, weight_decay=self.weight_decay
        )
        pristine = [i for i, m in enumerate(bool_masks) if not m.any()]
        perturbations = self._perturbations()
        per_epoch = len(images) + (self.on_the_fly if pristine else 0)
        steps_per_epoch = math.ceil(per_epoch / self.batch_size)
        total = steps_per_epoch * self.epochs
        scheduler = torch.optim.lr_scheduler.OneCycleLR(
            optimiser, max_lr=self.learning_rate, total_steps=total, pct_start=0.1
        )
        step = 0
        net.train()
        for _epoch in range(self.epochs):
            order = rng.permutation(per_epoch)
            for start in range(0, per_epoch, self.batch_size):
                samples = [
                    self._sample(int(index), images, bool_masks, pristine, rng, perturbations)
                    for index in order[start : start + self.batch_size]
                ]
                inputs = torch.from_numpy(
                    np.stack([network_input(s[0], self._tables(s[2])) for s in samples])
                )
                targets = torch.from_numpy(np.stack([s[1] for s in samples])[:, None])
                loss = _bce_dice(torch, net(inputs), targets.float())
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                net.constrain()
                scheduler.step()
                step += 1
                if on_progress is not None:
                    on_progress(step, total)
        net.eval()
        self.net_ = net
        return self

    def _sample(
        self,
        index: int,
        images: Sequence[np.ndarray],
        masks: Sequence[np.ndarray],
        pristine: list[int],
        rng: np.random.Generator,
        perturbations: Sequence[Any] = (),
    ) -> tuple[np.ndarray, np.ndarray, JpegTables]:
        """One augmented training crop: (pixels, mask, JPEG tables or None)."""
        tables: JpegTables = None
        if index < len(images):
            pixels, mask = images[index], masks[index]
        else:
            pixels, mask, tables = self._forge_on_the_fly(images, pristine, rng)
        if perturbations and rng.random() < self.perturb_share:
            pixels, mask, tables = self._perturb(pixels, mask, tables, perturbations, rng)
        pixels, mask = self._crop(pixels, mask, rng)
        if tables is None and rng.random() < self.jpeg_share:
            pixels, tables = jpeg_round_trip(pixels, int(rng.integers(*JPEG_QUALITY)))
        # Flips of a crop whose sides are multiples of 8 map JPEG blocks onto blocks.
        if rng.random() < 0.5:
            pixels, mask = pixels[:, ::-1], mask[:, ::-1]
        if rng.random() < 0.5:
            pixels, mask = pixels[::-1], mask[::-1]
        return np.ascontiguousarray(pixels), np.ascontiguousarray(mask), tables

    def _perturb(
        self,
        pixels: np.ndarray,
        mask: np.ndarray,
        tables: JpegTables,
        perturbations: Sequence[Any],
        rng: np.random.Generator,
    ) -> tuple[np.ndarray, np.ndarray, JpegTables]:
        """The whole image through one of ``perturb_specs`` (what an upload does to a forgery),
        the mask through the same geometry; unchanged if the result is smaller than a crop."""
        from fakescope.data.perturb import replay_mask

        chain = perturbations[int(rng.integers(len(perturbations)))]
        perturbed = chain(pixels, int(rng.integers(2**62)))
        if min(perturbed.pixels.shape[:2]) < self.crop_size:
            return pixels, mask, tables
        moved = replay_mask(mask, perturbed.record)
        # A recompressed file's own tables; any other last step leaves no JPEG to read.
        return perturbed.pixels, moved, perturbed.jpeg_tables()

    def _forge_on_the_fly(
        self, images: Sequence[np.ndarray], pristine: list[int], rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray, JpegTables]:
        """A new forgery of a random pristine training image (never of other data).

        With probability ``jpeg_source_share`` the pristine image is first JPEG-compressed and
        its tables are kept: the forged region then breaks the JPEG grid the rest still fits.
        """
        from fakescope.data.forge import FORGERIES, ForgeryError

        target = images[pristine[int(rng.integers(len(pristine)))]]
        tables: JpegTables = None
        if rng.random() < self.jpeg_source_share:
            target, tables = jpeg_round_trip(target, int(rng.integers(*JPEG_QUALITY)))
        kind = ON_THE_FLY_KINDS[int(rng.integers(len(ON_THE_FLY_KINDS)))]
        donor = images[pristine[int(rng.integers(len(pristine)))]]
        try:
            forgery = FORGERIES[kind].forge(target, rng, donor=donor)
        except ForgeryError:
            # Too small for this kind: train on the pristine image instead.
            return target, np.zeros(target.shape[:2], dtype=bool), tables
        return forgery.pixels, forgery.mask, tables

    def _crop(
        self, pixels: np.ndarray, mask: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """A ``crop_size`` square at a multiple-of-8 offset, often over the tampered region."""
        side = self.crop_size
        height, width = pixels.shape[:2]
        if mask.any() and rng.random() < MASK_CROP_SHARE:
            ys, xs = np.nonzero(mask)
            pick = int(rng.integers(ys.size))
            centre_y = int(ys[pick]) - int(rng.integers(side // 4, 3 * side // 4))
            centre_x = int(xs[pick]) - int(rng.integers(side // 4, 3 * side // 4))
            top, left = centre_y, centre_x
        else:
            top, left = (
                int(rng.integers(0, height - side + 1)),
                int(rng.integers(0, width - side + 1)),
            )
        top = int(np.clip(top, 0, height - side)) // 8 * 8
        left = int(np.clip(left, 0, width - side)) // 8 * 8
        return pixels[top : top + side, left : left + side], mask[
            top : top + side, left : left + side
        ]

    # -- prediction ----------------------------------------------------------------------------
    def _check_fitted(self) -> Any:
        net = getattr(self, "net_", None)
        if net is None:
            raise NotFittedError("this segmentation localizer is not trained; call fit or load")
        return net

    def predict_heatmap(
        self, image: np.ndarray, *, jpeg_quantization: JpegTables = None
    ) -> np.ndarray:
        """Sigmoid of the U-Net's logit at every pixel, float32 (H, W) in [0, 1].

        Images larger than ``tile_size`` go through overlapping tiles whose origins are
        multiples of 8 (so each tile's JPEG grid matches the file's). With ``flip_average``
        each tile is also read mirrored left-right and the two probability maps are averaged:
        a spurious hot spot rarely survives both views, a forged region does. It costs twice
        the time and raised the best mean F1 on the calibration split (see the model card).
        """
        net = self._check_fitted()
        torch = _require_torch()
        tables = self._tables(jpeg_quantization)

        def heat(tile: np.ndarray) -> np.ndarray:
            height, width = tile.shape[:2]
            # Padded to a multiple of 8 (and of the stride), so the mirror maps JPEG blocks
            # onto blocks: the same flip the training crops get.
            array = torch.from_numpy(
                pad_to_multiple(network_input(tile, tables), max(8, self.stride))
            )[None]
            if self.flip_average:
                array = torch.cat([array, array.flip(-1)])
            with torch.inference_mode():
                probability = torch.sigmoid(net(array))
            if self.flip_average:
                probability = 0.5 * (probability[:1] + probability[1:].flip(-1))
            return probability[0, 0, :height, :width].numpy()

        net.eval()
        return tiled_map(image, heat, tile=int(self.tile_size)).astype(np.float32, copy=False)

    def image_score(self, heatmap: np.ndarray) -> float:
        """Mean heat of the hottest ``score_top_share`` of the pixels (0.2 %: about a
        25x25 px region of a 512 px image).

        The base class averages the hottest 1 %, which dilutes small edits (a median mask is
        2-5 % of a 256 px tile, the smallest far less). On the calibration split the 0.2 % mean
        gave the best mean F1 of six image statistics; see the model card.
        """
        return top_share_mean(heatmap, self.score_top_share)

    # -- persistence ---------------------------------------------------------------------------
    def _weights(self) -> dict[str, np.ndarray]:
        net = self._check_fitted()
        return {
            key: value.detach().cpu().numpy().astype(np.float32)
            for key, value in net.state_dict().items()
            if not key.endswith("num_batches_tracked")
        }

    def _set_weights(self, weights: dict[str, np.ndarray], state: dict[str, Any]) -> None:
        from fakescope.errors import ModelError

        torch = _require_torch()
        net = self._build()
        expected = {k for k in net.state_dict() if not k.endswith("num_batches_tracked")}
        if set(weights) != expected:
            missing = sorted(expected - set(weights))[:3]
            extra = sorted(set(weights) - expected)[:3]
            raise ModelError(f"segmentation weights do not match: missing {missing}, extra {extra}")
        state_dict = {
            k: torch.from_numpy(np.asarray(v, dtype=np.float32)) for k, v in weights.items()
        }
        net.load_state_dict(state_dict, strict=False)
        net.eval()
        self.net_ = net


def _bce_dice(torch: Any, logits: Any, targets: Any) -> Any:
    """Pixel BCE plus soft Dice over the tampered samples of the batch (none: BCE alone)."""
    bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, targets)
    tampered = targets.flatten(1).amax(dim=1) > 0
    if not bool(tampered.any()):
        return bce
    probabilities = torch.sigmoid(logits).flatten(1)[tampered]
    truth = targets.flatten(1)[tampered]
    overlap = (probabilities * truth).sum(dim=1)
    dice = (2 * overlap + _DICE_SMOOTH) / (
        probabilities.sum(dim=1) + truth.sum(dim=1) + _DICE_SMOOTH
    )
    return bce + (1 - dice).mean()
