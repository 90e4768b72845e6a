"""Inpaint-learned: remove a random region and fill it with the zoo's learned inpainter.

The region is sampled as for ``inpaint`` (an ellipse, star polygon or brush-like blob from
:mod:`~fakescope.data.forge.shapes`), its box ``SIZE_FRACTION`` of the shorter image side, that
side capped at ``REFERENCE_SIDE`` px: the network (``inpaint-net``,
:mod:`fakescope.data.generators.inpainter`) trained on 128 px crops with holes of up to half a
crop, and a hole far larger than anything it saw would be filled with a flat smear. The network
runs on a window around the region (the region's box grown by half its longer side plus
``CONTEXT_PX`` on every side, clipped to the image), so its cost does not grow with the photo,
and the fill is composited into the image: outside the region every byte is the input's, and
the mask is exactly the region handed to the inpainter.

Which model: forging needs a trained inpainter, installed for the batch with
:func:`use_inpainter` (``ensure_available`` refuses to start without one or without torch).
``fakescope data forge --kind inpaint-learned`` prepares it with :func:`prepare_inpainter`:
``--generator-dir DIR`` loads a saved ``inpaint-net`` folder (``model.safetensors`` +
``config.json``, e.g. a cache entry), otherwise it trains one on tiles of ``--train-from`` (by
default the ``--from`` photos themselves) through the zoo's fingerprinted cache, so the first
run trains (minutes) and later runs with the same photos and options load it. Every forgery's
parameters record the model: fingerprint, SHA-256 of its weights file, config, options, seed
and which photos it trained on (``overlapping_photo_ids``: trained-on photos that are also
forged, ``null`` when a loaded folder does not list its training photos; a fill is new
content whatever the model saw, so the mask stays exact either way, but a study that wants
unseen photos passes ``--train-from`` with other photos).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from fakescope.data.forge.base import Forgery, MissingDependencyError, composite
from fakescope.data.forge.shapes import place, sample_box, sample_position, sample_shape

GENERATOR = "inpaint-net"
SIZE_FRACTION = (0.1, 0.25)  # of the shorter side, capped at REFERENCE_SIDE
REFERENCE_SIDE = 256  # twice the inpainter's training crop: holes up to half a crop
CONTEXT_PX = 8  # extra context around the region, beyond half its longer side
TRAIN_TILE_SIZE = 256  # tiles cut from the training photos (as ``data synth`` does)
TRAIN_MAX_TILES = 4  # per training photo
# Folders whose files are never real photos to train on (outputs of the data commands).
NOT_REAL_DIRS = frozenset({"fake", "1_fake", "processed-real", "masks", "flow", "meta"})
TORCH_HINT = "pip install -e .[torch]"


@dataclass(frozen=True)
class Inpainter:
    """A trained ``inpaint-net`` and the JSON description every forgery records."""

    generator: Any  # fakescope.data.generators.inpainter.InpaintNet (torch: imported lazily)
    description: dict[str, Any]
    cache_hit: bool | None = None  # None: loaded from --generator-dir, not through the cache
    train_seconds: float = 0.0


_ACTIVE: list[Inpainter] = []


@contextmanager
def use_inpainter(inpainter: Inpainter) -> Iterator[Inpainter]:
    """Install ``inpainter`` for ``inpaint-learned`` forgeries made inside the block.

    A module-level slot rather than a parameter because the forge build calls every kind with
    the same signature; ``forge_inpaint_learned(..., inpainter=...)`` bypasses it.
    """
    _ACTIVE.append(inpainter)
    try:
        yield inpainter
    finally:
        _ACTIVE.remove(inpainter)


def require_torch() -> None:
    """Torch and safetensors, or an error that names the extra to install."""
    try:
        import safetensors  # noqa: F401
        import torch  # noqa: F401
    except ImportError as exc:
        raise MissingDependencyError(
            f"inpaint-learned needs torch and safetensors; install them with `{TORCH_HINT}`"
        ) from exc


def require_inpainter() -> Inpainter:
    """The installed inpainter; the registry's ``ensure_available`` for ``inpaint-learned``."""
    require_torch()
    if not _ACTIVE:
        raise MissingDependencyError(
            "inpaint-learned needs a trained inpainter: `fakescope data forge --kind "
            "inpaint-learned` trains one (cached) or loads --generator-dir; from Python, "
            "run forge_dataset inside `with use_inpainter(prepare_inpainter(...)):`"
        )
    return _ACTIVE[-1]


def forge_inpaint_learned(
    target: np.ndarray,
    rng: np.random.Generator,
    *,
    donor: np.ndarray | None = None,
    shape: str | None = None,
    inpainter: Inpainter | None = None,
) -> Forgery:
    """Fill a random region of ``target`` with the inpainter; ``shape`` fixes the family."""
    model = inpainter if inpainter is not None else require_inpainter()
    height, width = target.shape[:2]
    box_h, box_w = sample_box(
        rng, min(height, REFERENCE_SIDE), min(width, REFERENCE_SIDE), frac=SIZE_FRACTION
    )
    region = sample_shape(rng, box_h, box_w, shape)
    y, x = sample_position(rng, height, width, box_h, box_w)
    mask = place(region.mask, height, width, y, x)
    margin = max(box_h, box_w) // 2 + CONTEXT_PX
    top, left = max(0, y - margin), max(0, x - margin)
    bottom, right = min(height, y + box_h + margin), min(width, x + box_w + margin)
    window = np.ascontiguousarray(target[top:bottom, left:right])
    window_mask = mask[top:bottom, left:right]
    filled = model.generator.inpaint(window[None], window_mask[None])[0]
    content = target.copy()
    content[top:bottom, left:right] = filled
    params = {
        "region": region.params,
        "box_hw": [box_h, box_w],
        "box_yx": [y, x],
        "window_yxhw": [top, left, bottom - top, right - left],
        "inpainter": GENERATOR,
        "model": model.description,
        "mask_rule": "the region handed to the inpainter; every other pixel is the input's",
    }
    # composite() is every kind's last step, the forge's one rule for "outside the mask is the
    # input"; the inpainter composites too, so this costs nothing and guards that contract.
    return Forgery(composite(target, content, mask), mask, params)


# -- preparing the model ----------------------------------------------------------------------


def prepare_inpainter(
    real_dir: str | os.PathLike[str],
    *,
    out_dir: str | os.PathLike[str] | None = None,
    generator_dir: str | os.PathLike[str] | None = None,
    train_from: str | os.PathLike[str] | None = None,
    seed: int = 0,
    train_steps: int | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    rebuild: bool = False,
    generator: Any | None = None,
    on_step: Callable[[int, int], None] | None = None,
    on_bad_file: Callable[[str, str], None] | None = None,
) -> Inpainter:
    """Load ``generator_dir``, or train (or load from the cache) on ``train_from``/``real_dir``.

    ``real_dir`` holds the photos that will be forged: the default training photos, and in any
    case what ``overlapping_photo_ids`` is computed against. Files under ``out_dir`` and under
    output folders (``fake``, ``masks``, ...) never train. ``generator`` replaces the default
    untrained ``inpaint-net`` (tests pass a tiny config). Raises
    :class:`~fakescope.data.forge.build.ForgeSetupError` when no model can be had.
    """
    from fakescope.data.forge.build import ForgeSetupError

    require_torch()
    targets = {c.photo_id for c in _real_candidates(Path(real_dir), out_dir)[0]}
    if generator_dir is not None:
        return _load(Path(generator_dir), targets)
    from fakescope.data.generators.registry import create_generator

    model = generator if generator is not None else create_generator(GENERATOR)
    if train_steps is not None:
        model.options = replace(model.options, steps=train_steps)
    source = Path(train_from) if train_from is not None else Path(real_dir)
    tiles, photo_ids = _training_tiles(source, out_dir, seed, on_bad_file)
    if not tiles:
        raise ForgeSetupError(f"no image under {source} gave a tile to train {GENERATOR} on")
    training = {
        "train_from": str(source),
        "train_photo_ids": photo_ids,
        "train_tiles": len(tiles),
        "tile_size": TRAIN_TILE_SIZE,
        "max_tiles": TRAIN_MAX_TILES,
    }
    try:
        cache = model.fit_cached(
            _stack(tiles),
            seed,
            cache_dir=cache_dir,
            rebuild=rebuild,
            on_step=on_step,
            extra={"training": training},
        )
    except ValueError as exc:  # e.g. tiles too small for the crop
        raise ForgeSetupError(f"{GENERATOR}: {exc}") from exc
    description = _describe(model, cache.path, cache.fingerprint, "cache", training, targets)
    seconds = 0.0 if cache.hit or model.log is None else model.log.seconds
    return Inpainter(model, description, cache_hit=cache.hit, train_seconds=seconds)


def _load(folder: Path, targets: set[str]) -> Inpainter:
    from fakescope.data.forge.build import ForgeSetupError
    from fakescope.data.generators.base import CONFIG_NAME
    from fakescope.data.generators.inpainter import InpaintNet

    try:
        document = json.loads((folder / CONFIG_NAME).read_text(encoding="utf-8"))
        if document.get("generator") != GENERATOR:
            raise ValueError(f"it holds a {document.get('generator')!r} model, not {GENERATOR}")
        model = InpaintNet.load(folder)
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
        raise ForgeSetupError(f"cannot load an inpainter from {folder}: {exc}") from exc
    training = document.get("training")
    description = _describe(
        model, folder, document.get("fingerprint"), "generator-dir", training, targets
    )
    return Inpainter(model, description)


def _describe(
    model: Any,
    folder: Path,
    key: str | None,
    origin: str,
    training: dict[str, Any] | None,
    targets: set[str],
) -> dict[str, Any]:
    """What every forgery records about the model (JSON-ready)."""
    import torch

    from fakescope.data.generators.base import WEIGHTS_NAME
    from fakescope.data.manifest import file_sha256

    # None when the folder does not say which photos trained it (a model saved by `data
    # synth` or by hand): the overlap is then unknown, which is not the same as none.
    trained_on = (training or {}).get("train_photo_ids")
    overlap = None if trained_on is None else sorted(set(trained_on) & targets)
    return {
        "generator": GENERATOR,
        "fingerprint": key,
        "weights_sha256": file_sha256(folder / WEIGHTS_NAME),
        "folder": str(folder),
        "origin": origin,
        "format_version": model.format_version,
        "config": asdict(model.config),
        "options": asdict(model.options),
        "seed": model.seed,
        "torch": torch.__version__,
        "training": training,
        "overlapping_photo_ids": overlap,
    }


def _training_tiles(
    root: Path,
    out_dir: str | os.PathLike[str] | None,
    seed: int,
    on_bad_file: Callable[[str, str], None] | None,
) -> tuple[list[np.ndarray], list[str]]:
    """Tiles of the photos under ``root`` (sorted) and the photo ids that gave them.

    Large images give up to ``TRAIN_MAX_TILES`` plain crops (offsets on the 16 px grid,
    featureless crops dropped, as ``data synth`` cuts them); smaller ones one crop at the
    origin, cut to multiples of 16. No resampling: the inpainter learns the photos' own noise.
    """
    from fakescope.data.tiles import TILE_ALIGN, TILE_MIN_STD, cut_tiles
    from fakescope.errors import InputError
    from fakescope.io.image import load_image

    candidates, errors = _real_candidates(root, out_dir)
    for path, reason in errors:
        if on_bad_file is not None:
            on_bad_file(path, reason)
    tiles: list[np.ndarray] = []
    photo_ids: set[str] = set()
    for candidate in candidates:
        try:
            pixels = load_image(candidate.path).pixels
        except InputError as exc:
            if on_bad_file is not None:
                on_bad_file(str(candidate.path), exc.message)
            continue
        height, width = pixels.shape[:2]
        if min(height, width) >= TRAIN_TILE_SIZE:
            crops = [
                tile.pixels
                for tile in cut_tiles(
                    pixels,
                    candidate.photo_id or "photo",  # tile names need a non-empty id
                    size=TRAIN_TILE_SIZE,
                    max_tiles=TRAIN_MAX_TILES,
                    seed=seed,
                    align=TILE_ALIGN,
                    min_std=TILE_MIN_STD,
                )
            ]
        else:
            side = min(height, width) // TILE_ALIGN * TILE_ALIGN
            crops = [np.ascontiguousarray(pixels[:side, :side])] if side else []
        tiles.extend(crops)
        if crops:
            photo_ids.add(candidate.photo_id)
    return tiles, sorted(photo_ids)


def _real_candidates(
    root: Path, out_dir: str | os.PathLike[str] | None
) -> tuple[list[Any], list[tuple[str, str]]]:
    """The forge's input files under ``root``, less outputs of the data commands.

    Uses the forge build's own listing and its rule for what it wrote, so that the photos
    counted here are the ones the build forges.
    """
    from fakescope.data.forge.build import _is_output, find_inputs

    candidates, errors = find_inputs(root)
    kept = [
        candidate
        for candidate in candidates
        if not NOT_REAL_DIRS.intersection(Path(candidate.rel).parts[:-1])
        and not (out_dir is not None and _is_output(candidate.path, root, Path(out_dir)))
    ]
    return kept, errors


def _stack(tiles: list[np.ndarray]) -> np.ndarray:
    """One (N, S, S, 3) batch: tiles cut at the origin to the smallest side among them."""
    side = min(min(tile.shape[:2]) for tile in tiles)
    return np.stack([tile[:side, :side] for tile in tiles])
