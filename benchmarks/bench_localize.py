"""Benchmark ``fakescope localize``: time and peak memory per image size, up to 6000x4000.

Run as ``python benchmarks/bench_localize.py [--localizer NAME_OR_DIR] [--sizes 1024x1024
2048x2048 6000x4000] [--repeat 1] [--no-write] [--undo] [--param KEY=VALUE ...]``.

For each size, a synthetic photo (a smooth random field with sensor-like noise and a pasted
square of another texture, generated in bands so the generator itself stays small) is
localized by the chosen localizer (default: the bundled default, ``segmentation-default``;
when that cannot be loaded, a ``one-class`` localizer fitted on the fly on a few synthetic
pristine images), and its outputs are written as ``fakescope localize`` writes them (heat map,
mask and overlay PNGs, :func:`fakescope.reports.localization.write_localization_images`).

``--undo`` also times the warp undo (``undo_with_flow`` on the localization's flow, warp
methods only); ``--param`` sets a localizer parameter first (a JSON value, e.g.
``test_time_views=1``), to compare settings.

Printed per size: seconds for ``localize``, for writing and for the undo, megapixels per
second (of ``localize``), the RSS
before (``base``) and the peak (``VmHWM``, reset per size through ``/proc/self/clear_refs``),
and ``peak-base``: what that size adds. ``image MiB`` is the RGB input alone, for scale: a
bounded method adds a few times that (heat map, mask, one output), not a multiple per tile.
Nothing asserts; numbers are printed. ``/proc`` only, no psutil (Linux).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from fakescope.localizers import DEFAULT_LOCALIZER, create, load_localizer
from fakescope.reports.localization import write_localization_images
from proc_memory import reset_peak_rss, status_kib

DEFAULT_SIZES = ("1024x1024", "2048x2048", "6000x4000")
BAND = 512  # rows generated at a time


def mib(kib: int) -> str:
    return "-" if kib < 0 else f"{kib / 1024:.0f}"


def parse_size(text: str) -> tuple[int, int]:
    """``WIDTHxHEIGHT`` (or one number for a square) as (height, width)."""
    width, _, height = text.lower().partition("x")
    return (int(height or width), int(width))


def synthetic_photo(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A photo-like image: a low-frequency field, upsampled, plus noise; a square pasted in.

    Built band by band from a small random field, so a 6000x4000 image costs its own 72 MB
    and little more.
    """
    rng = np.random.default_rng(seed)
    coarse = rng.normal(size=(height // 64 + 2, width // 64 + 2, 3)).astype(np.float32)
    small = Image.fromarray(np.clip(coarse * 40 + 128, 0, 255).astype(np.uint8))
    smooth = np.asarray(small.resize((width, height), Image.Resampling.BICUBIC))
    pixels = np.empty((height, width, 3), dtype=np.uint8)
    for top in range(0, height, BAND):
        band = smooth[top : top + BAND].astype(np.float32)
        band += rng.normal(0.0, 3.0, band.shape).astype(np.float32)
        pixels[top : top + BAND] = np.clip(band, 0, 255).astype(np.uint8)
    # A pasted square with its own, stronger noise: something for the method to find.
    side = min(height, width) // 4
    y0, x0 = height // 3, width // 3
    patch = rng.normal(128.0, 25.0, (side, side, 3))
    pixels[y0 : y0 + side, x0 : x0 + side] = np.clip(patch, 0, 255).astype(np.uint8)
    return pixels


def choose_localizer(name: str | None) -> tuple[Any, str]:
    """The named localizer, the bundled default, or a one-class fitted here as a fallback."""
    target = name or DEFAULT_LOCALIZER
    try:
        return load_localizer(target), target
    except Exception as exc:  # the bundled default may not be trained yet
        if name is not None:
            raise
        print(f"# {target} cannot be loaded ({exc}); fitting one-class on synthetic photos")
    images = [synthetic_photo(256, 256, seed=100 + i) for i in range(8)]
    localizer = create("one-class")
    localizer.fit(images, [None] * len(images))
    return localizer, "one-class (fitted on the fly)"


def run_size(
    localizer: Any,
    height: int,
    width: int,
    repeat: int,
    write: bool,
    out_dir: Path,
    undo: bool = False,
) -> dict[str, Any]:
    pixels = synthetic_photo(height, width)
    reset_peak_rss()
    base = status_kib("VmRSS")
    localize_s, write_s, undo_s = [], [], []
    for _ in range(repeat):
        start = time.perf_counter()
        localization = localizer.localize(pixels)
        localize_s.append(time.perf_counter() - start)
        if write:
            start = time.perf_counter()
            write_localization_images(out_dir, f"bench-{width}x{height}", pixels, localization)
            write_s.append(time.perf_counter() - start)
        if undo:
            start = time.perf_counter()
            localizer.undo_with_flow(pixels, localization.flow)
            undo_s.append(time.perf_counter() - start)
        del localization
    peak = status_kib("VmHWM")
    seconds = statistics.median(localize_s)
    return {
        "size": f"{width}x{height}",
        "localize_s": seconds,
        "write_s": statistics.median(write_s) if write_s else None,
        "undo_s": statistics.median(undo_s) if undo_s else None,
        "mpix_per_s": height * width / 1e6 / seconds,
        "image_mib": pixels.nbytes / 2**20,
        "base": base,
        "peak": peak,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--localizer", default=None, help="folder or bundled name")
    parser.add_argument("--sizes", nargs="+", default=list(DEFAULT_SIZES))
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--no-write", action="store_true", help="time localize() only")
    parser.add_argument("--undo", action="store_true", help="also time the warp undo")
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="set a localizer parameter (JSON value) before timing; repeatable",
    )
    args = parser.parse_args(argv)

    localizer, label = choose_localizer(args.localizer)
    if args.param:
        settings = {
            key: json.loads(value) for key, _, value in (p.partition("=") for p in args.param)
        }
        localizer.set_params(**settings)
        label += f" with {settings}"
    if args.undo and not callable(getattr(localizer, "undo_with_flow", None)):
        parser.error(f"{label} has no undo step; leave out --undo")
    print(f"# localizer: {label} (method {localizer.name}, threshold {localizer.threshold:.3f})")
    print(
        f"# python {platform.python_version()}, {os.cpu_count()} CPUs, "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '-')}"
    )
    # Warm-up on a small image: imports, first allocations, thread pools.
    localizer.localize(synthetic_photo(256, 256, seed=1))
    header = (
        f"{'size':>10} {'localize s':>10} {'write s':>8} {'undo s':>7} {'MP/s':>6} "
        f"{'image MiB':>9} {'base MiB':>8} {'peak MiB':>8} {'peak-base':>9}"
    )
    print(header)
    with tempfile.TemporaryDirectory() as tmp:
        for text in args.sizes:
            height, width = parse_size(text)
            row = run_size(
                localizer, height, width, args.repeat, not args.no_write, Path(tmp), args.undo
            )
            added = row["peak"] - row["base"] if min(row["peak"], row["base"]) >= 0 else -1
            write = "-" if row["write_s"] is None else f"{row['write_s']:.2f}"
            undo = "-" if row["undo_s"] is None else f"{row['undo_s']:.2f}"
            print(
                f"{row['size']:>10} {row['localize_s']:>10.2f} {write:>8} {undo:>7} "
                f"{row['mpix_per_s']:>6.2f} {row['image_mib']:>9.0f} {mib(row['base']):>8} "
                f"{mib(row['peak']):>8} {mib(added):>9}",
                flush=True,
            )


if __name__ == "__main__":
    main()
