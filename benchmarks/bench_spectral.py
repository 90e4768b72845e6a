"""Benchmark the spectral features against a Durall-style reference and against the FFT floor.

Run as ``python benchmarks/bench_spectral.py [--sizes 256 512 1024] [--images N] [--repeat R]``.

Every method runs on the same images in one process, and the methods are interleaved inside each
repeat so that load from other processes on a shared machine hits all of them alike. Measured:

* ``decode``: Pillow decodes a PNG (already read into memory) into an RGB uint8 array.
* ``ours``: :func:`fakescope.features.spectral.spectral_feature` on the decoded array.
* ``decode + ours``: both, per image, in one loop.
* ``reference``: the computation as the original Durall et al. code does it (complex128
  ``np.fft.fft2``, ``fftshift``, ``20*log|F|``, radii from the centre, ``argsort``, cumulative
  sums between integer-radius boundaries), then interpolation to the same fixed length.
* ``rfft2 only``: one ``scipy.fft.rfft2`` of the float32 grey image, converted beforehand; the
  least any FFT-based feature can cost.
* ``decode + rfft2``: the floor for a pipeline that starts from PNG bytes.

Timing uses ``time.perf_counter`` with warm-up runs; each figure is the median over repeats of
(time for the whole image list) / (number of images). Nothing here asserts on timing: the goals
are printed as met or not. The reference's profile is checked against ours before timing, so the
speed-up compares two computations of the same quantity.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import io
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import PIL
import scipy
import scipy.fft
from PIL import Image
from rich.console import Console
from rich.table import Table

from fakescope.features.spectral import (
    azimuthal_profile,
    ring_geometry,
    spectral_feature,
    to_grey,
)

REFERENCE_GOAL = 10.0  # reference_time / ours_time at 1024x1024 must reach this
FLOOR_GOAL = 1.5  # (decode + ours) / (decode + rfft2) at 1024x1024 must stay under this
GOAL_SIZE = 1024
_LUMA_WEIGHTS_64 = np.array([0.299, 0.587, 0.114])  # BT.601, as in ours but in float64
_EPSILON = 1e-8  # the same epsilon as ours, so the two logs differ only by the FFT's scale


# ----------------------------------------------------------------------------- reference


def reference_profile(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ring means of ``20*log(|fft2|)`` and ring sizes, the way the original code computes them.

    Follows Durall et al.'s ``azimuthalAverage``: full complex128 plane, ``fftshift`` to put DC
    in the middle, radii of every pixel from the centre, a full ``argsort`` of the radii (redone
    for every image, as there), and cumulative sums differenced at integer-radius boundaries.
    A few deliberate departures make it compute exactly the quantity ours does, so the results
    can be compared: the centre is the DC bin (``H//2, W//2`` after the shift; the original used
    ``(W-1)/2``, half a pixel off on even sizes), radii are rounded rather than truncated and
    scaled by ``min(H, W)`` like ours, and the innermost and outermost rings are kept (the
    original's differencing drops both).
    """
    grey = rgb[..., :3].astype(np.float64) @ _LUMA_WEIGHTS_64
    height, width = grey.shape
    spectrum = np.fft.fftshift(np.fft.fft2(grey))
    magnitude_db = 20.0 * np.log(np.abs(spectrum) + _EPSILON)

    side = min(height, width)
    y, x = np.indices(magnitude_db.shape)
    radius = np.hypot((y - height // 2) * (side / height), (x - width // 2) * (side / width))
    order = np.argsort(radius.ravel())
    ring_sorted = np.rint(radius.ravel()[order]).astype(np.intp)
    values_sorted = magnitude_db.ravel()[order]

    # Boundaries are where the integer radius changes in the sorted order; a ring's sum is the
    # difference of the cumulative sum across its two boundaries.
    boundaries = np.concatenate(([0], np.flatnonzero(np.diff(ring_sorted)) + 1, [ring_sorted.size]))
    cumulative = np.concatenate(([0.0], np.cumsum(values_sorted)))
    ring_sum = cumulative[boundaries[1:]] - cumulative[boundaries[:-1]]
    ring_size = np.diff(boundaries).astype(np.float64)
    return ring_sum / ring_size, ring_size


def reference_feature(rgb: np.ndarray, n_features: int = 128) -> np.ndarray:
    """The reference profile without DC, interpolated onto ``n_features`` points like ours.

    The original code interpolates with ``scipy.interpolate.griddata(..., 'cubic')``; linear
    interpolation here keeps the two features comparable and, if anything, flatters the
    reference's speed.
    """
    profile = reference_profile(rgb)[0][1:]
    source = np.linspace(0.0, 1.0, profile.size)
    target = np.linspace(0.0, 1.0, n_features)
    return np.interp(target, source, profile).astype(np.float32)


def check_reference_agrees(rgb: np.ndarray) -> float:
    """Assert the reference and ours compute the same profile; return the largest difference.

    Ours is the natural log of the orthonormal FFT; the reference is ``20*log`` of the
    unnormalised one. So reference = 20 * (ours + log(sqrt(H*W))), up to float32 rounding in
    ours and the epsilon (negligible against magnitudes of real images). The rings must match
    exactly: same count, and the half-plane weights of ours must add up to the full-plane sizes.
    """
    height, width = rgb.shape[:2]
    ref_profile, ref_size = reference_profile(rgb)
    ours = azimuthal_profile(rgb)
    geometry = ring_geometry(height, width)
    if ref_profile.shape != ours.shape or not np.array_equal(ref_size, geometry.ring_weight):
        raise AssertionError(f"ring structure differs at {height}x{width}")
    ours_db = 20.0 * (ours + 0.5 * np.log(height * width))
    difference = float(np.max(np.abs(ours_db - ref_profile)))
    # 0.1 dB is 1% in magnitude. Typical rings agree to ~1e-6 dB; the worst is the one-coefficient
    # corner ring, where the float32 FFT's absolute rounding error (~1e-5 of the image's RMS) is
    # largest relative to a small magnitude. A misplaced ring would be off by whole dB.
    if difference > 0.1:
        raise AssertionError(f"profiles differ by {difference:.3g} dB at {height}x{width}")
    return difference


# ----------------------------------------------------------------------------- images


def _photo_sources() -> list[np.ndarray]:
    """Real photographs from scikit-image if it is installed, else nothing."""
    try:
        from skimage import data
    except ImportError:
        return []
    photos = []
    for name in ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry"):
        try:
            photos.append(np.asarray(getattr(data, name)(), dtype=np.uint8))
        except Exception:  # a data set missing from this install is not worth failing for
            continue
    return photos


def _smooth_field(rng: np.random.Generator, size: int) -> np.ndarray:
    """A colour 1/f^2-power random field plus pixel noise: photo-like spectra, no seams."""
    ky = np.fft.fftfreq(size)[:, None]
    kx = np.fft.rfftfreq(size)[None, :]
    amplitude = 1.0 / np.maximum(np.hypot(ky, kx), 1.0 / size)
    channels = []
    for _ in range(3):
        phase = rng.standard_normal((size, size // 2 + 1)) + 1j * rng.standard_normal(
            (size, size // 2 + 1)
        )
        field = np.fft.irfft2(phase * amplitude, s=(size, size))
        field = (field - field.mean()) / (field.std() + 1e-12)
        channels.append(field)
    image = 128.0 + 40.0 * np.stack(channels, axis=-1) + rng.normal(0.0, 4.0, (size, size, 3))
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def _photo_crop(rng: np.random.Generator, photo: np.ndarray, size: int) -> np.ndarray:
    """A random size x size crop of a photo, mirror-tiled when the photo is smaller, plus noise.

    Mirroring keeps edges continuous, so tiling adds no artificial spectral lines. The crop is
    taken from an extension larger than needed, at a random offset, and sensor-like noise is
    added, because an exactly mirror-symmetric image has exact zeros on its Nyquist row and
    column; no camera produces those, and the log of a zero only measures rounding noise.
    """
    height, width = photo.shape[:2]
    pad_y = max(0, size + size // 2 - height)
    pad_x = max(0, size + size // 2 - width)
    if pad_y or pad_x:
        photo = np.pad(photo, ((0, pad_y), (0, pad_x), (0, 0)), mode="symmetric")
    top = int(rng.integers(0, photo.shape[0] - size + 1))
    left = int(rng.integers(0, photo.shape[1] - size + 1))
    crop = photo[top : top + size, left : left + size].astype(np.float64)
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    noisy = crop + rng.normal(0.0, 2.0, crop.shape)
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


def make_images(size: int, count: int, seed: int) -> list[np.ndarray]:
    """Alternating photo crops and synthetic fields, all size x size RGB uint8."""
    rng = np.random.default_rng(seed + size)
    photos = _photo_sources()
    images = []
    for index in range(count):
        if photos and index % 2 == 0:
            images.append(_photo_crop(rng, photos[(index // 2) % len(photos)], size))
        else:
            images.append(_smooth_field(rng, size))
    return images


def write_pngs(images: Sequence[np.ndarray], folder: Path, size: int) -> list[bytes]:
    """Save PNGs to disk and read them back as bytes, so decoding is timed without file I/O."""
    payloads = []
    for index, image in enumerate(images):
        path = folder / f"bench_{size}_{index}.png"
        Image.fromarray(image).save(path, format="PNG")
        payloads.append(path.read_bytes())
    return payloads


def decode_png(payload: bytes) -> np.ndarray:
    """PNG bytes → (H, W, 3) uint8, the way a loader would do it."""
    with Image.open(io.BytesIO(payload)) as image:
        return np.asarray(image.convert("RGB"))


# ----------------------------------------------------------------------------- timing


@dataclass
class Method:
    name: str
    run: Callable[[int], object]  # called with the image's index in the list


def time_methods(methods: Sequence[Method], count: int, repeat: int) -> dict[str, float]:
    """Median seconds per image for each method; methods interleaved inside every repeat."""
    for method in methods:  # warm-up: caches, FFT plans, allocator, lazy imports
        for index in range(count):
            method.run(index)
    samples: dict[str, list[float]] = {method.name: [] for method in methods}
    gc_was_enabled = gc.isenabled()
    gc.disable()  # a collection landing in one method's loop would be noise, not its cost
    try:
        for _ in range(repeat):
            for method in methods:
                start = time.perf_counter()
                for index in range(count):
                    method.run(index)
                samples[method.name].append((time.perf_counter() - start) / count)
    finally:
        if gc_was_enabled:
            gc.enable()
    return {name: statistics.median(values) for name, values in samples.items()}


FeatureFunction = Callable[[np.ndarray, int, int], np.ndarray]


def load_baseline(path: Path) -> FeatureFunction:
    """``spectral_feature`` from another copy of the module, e.g. the version before a change.

    Timing both in one run, interleaved, is the only fair before/after on a machine whose load
    changes from minute to minute.
    """
    name = "bench_spectral_baseline"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module.spectral_feature


def bench_size(
    size: int,
    count: int,
    repeat: int,
    n_features: int,
    workers: int,
    folder: Path,
    seed: int,
    baseline: FeatureFunction | None = None,
) -> tuple[dict[str, float], float]:
    images = make_images(size, count, seed)
    payloads = write_pngs(images, folder, size)
    greys = [to_grey(image) for image in images]  # the floor's input, converted outside timing
    decoded = [decode_png(payload) for payload in payloads]
    if not all(np.array_equal(a, b) for a, b in zip(decoded, images, strict=True)):
        raise AssertionError("PNG round trip changed the pixels")
    difference = max(check_reference_agrees(image) for image in images[:2])

    def decode_then_ours(index: int) -> object:
        return spectral_feature(decode_png(payloads[index]), n_features, workers)

    def decode_then_rfft(index: int) -> object:
        decode_png(payloads[index])
        return scipy.fft.rfft2(greys[index], norm="ortho", workers=workers)

    methods = [
        Method("decode", lambda i: decode_png(payloads[i])),
        Method("ours", lambda i: spectral_feature(images[i], n_features, workers)),
        Method("decode + ours", decode_then_ours),
        Method("reference", lambda i: reference_feature(images[i], n_features)),
        Method("rfft2 only", lambda i: scipy.fft.rfft2(greys[i], norm="ortho", workers=workers)),
        Method("decode + rfft2", decode_then_rfft),
    ]
    if baseline is not None:
        for image in images[:2]:
            before = baseline(image, n_features, workers)
            after = spectral_feature(image, n_features, workers)
            # Grey levels that differ in the last float32 bit move a tiny outer coefficient by
            # ~1e-4 relative; anything larger than rounding would be far above this bound.
            if not np.allclose(before, after, rtol=0.0, atol=1e-3):
                raise AssertionError(f"baseline and ours disagree at {size}x{size}")
        methods.insert(2, Method("baseline", lambda i: baseline(images[i], n_features, workers)))
    return time_methods(methods, count, repeat), difference


# ----------------------------------------------------------------------------- report


def environment_lines(workers: int) -> list[str]:
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        usable = os.cpu_count() or 1
    load = (
        ", ".join(f"{value:.2f}" for value in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    )
    return [
        f"python {platform.python_version()} on {platform.platform()}",
        f"processor {platform.processor() or platform.machine()}",
        f"cpu_count {os.cpu_count()}, usable {usable}, load average {load}",
        f"numpy {np.__version__}, scipy {scipy.__version__}, Pillow {PIL.__version__}",
        f"scipy.fft workers={workers}",
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512, 1024])
    parser.add_argument("--images", type=int, default=8, help="images per size")
    parser.add_argument("--repeat", type=int, default=5, help="timed repeats; median is kept")
    parser.add_argument("--n-features", type=int, default=128)
    parser.add_argument("--workers", type=int, default=-1, help="scipy.fft workers, both sides")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--baseline",
        type=Path,
        help="another spectral.py (e.g. before a change) to time against ours, interleaved",
    )
    args = parser.parse_args(argv)

    console = Console()
    for line in environment_lines(args.workers):
        console.print(line, highlight=False)
    console.print(
        f"{args.images} images per size, {args.repeat} repeats (median), warm-up first\n",
        highlight=False,
    )

    baseline = load_baseline(args.baseline) if args.baseline else None
    timings: dict[int, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench_spectral_") as folder:
        for size in args.sizes:
            timings[size], difference = bench_size(
                size,
                args.images,
                args.repeat,
                args.n_features,
                args.workers,
                Path(folder),
                args.seed,
                baseline,
            )
            console.print(
                f"{size}x{size}: reference agrees with ours (max {difference:.2g} dB)",
                highlight=False,
            )

    table = Table(title="Time per image (median)")
    table.add_column("size")
    table.add_column("method")
    table.add_column("ms/image", justify="right")
    table.add_column("images/s", justify="right")
    for size, by_method in timings.items():
        for name, seconds in by_method.items():
            table.add_row(f"{size}", name, f"{seconds * 1e3:.2f}", f"{1.0 / seconds:.1f}")
        table.add_section()
    console.print(table)

    ratios = Table(
        title=f"Ratios (goals at {GOAL_SIZE}: "
        f"first >= {REFERENCE_GOAL:g}x, second <= {FLOOR_GOAL:g}x)"
    )
    ratios.add_column("size")
    ratios.add_column("reference / ours", justify="right")
    ratios.add_column("(decode+ours) / (decode+rfft2)", justify="right")
    ratios.add_column("ours / rfft2 only", justify="right")
    if args.baseline:
        ratios.add_column("baseline / ours", justify="right")
    for size, t in timings.items():
        ratios.add_row(
            f"{size}",
            f"{t['reference'] / t['ours']:.1f}x",
            f"{t['decode + ours'] / t['decode + rfft2']:.2f}x",
            f"{t['ours'] / t['rfft2 only']:.2f}x",
            *([f"{t['baseline'] / t['ours']:.2f}x"] if "baseline" in t else []),
        )
    console.print(ratios)

    if GOAL_SIZE in timings:
        t = timings[GOAL_SIZE]
        speedup = t["reference"] / t["ours"]
        overhead = t["decode + ours"] / t["decode + rfft2"]
        verdict = {True: "met", False: "NOT met"}
        console.print(
            f"goal reference/ours >= {REFERENCE_GOAL:g}x at {GOAL_SIZE}: {speedup:.1f}x, "
            f"{verdict[speedup >= REFERENCE_GOAL]}",
            highlight=False,
        )
        console.print(
            f"goal (decode+ours)/(decode+rfft2) <= {FLOOR_GOAL:g}x at {GOAL_SIZE}: "
            f"{overhead:.2f}x, {verdict[overhead <= FLOOR_GOAL]}",
            highlight=False,
        )
    else:
        console.print(f"goals are judged at {GOAL_SIZE}x{GOAL_SIZE}, which was not run")
    return 0


if __name__ == "__main__":
    sys.exit(main())
