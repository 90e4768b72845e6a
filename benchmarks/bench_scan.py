"""Benchmark ``scan``: throughput and peak memory per image size, and memory flatness.

Run as ``python benchmarks/bench_scan.py [--model DIR] [--sizes 256 512 1024] [--n 48]
[--cli] [--flat 10000]``.

Measured, for the default model (``fakescope.models.load_model()``) or ``--model DIR``:

* ``pipeline``: :func:`fakescope.pipeline.scan.scan_paths` over a folder of ``--n`` generated
  images per size (half PNG, half JPEG q90; photo-like random fields, half of them 2x
  nearest-neighbour upsampled like a generator's output), consumed in process: decode, hash,
  score, verdict, everything but writing rows out. One untimed warm-up pass first (imports, FFT
  plans, page cache), then the median of ``--repeat`` timed passes.
* ``cli`` (``--cli``): ``python -m fakescope scan DIR -f jsonl -o /dev/null`` in a subprocess,
  wall time including interpreter start-up and model load, so it is lower than ``pipeline`` on
  small folders by a constant.
* peak RSS: ``VmHWM`` from ``/proc/self/status``, reset before each size (warm-up included)
  by writing ``5`` to ``/proc/self/clear_refs`` (Linux), so each size's peak is its own; for
  the CLI, the child's ``ru_maxrss``. ``base`` is the RSS just before that size's warm-up;
  ``peak-base`` is what that size adds (the allocator keeps freed memory, so a size smaller
  than one before it adds ~0).
* the CLI's fixed cost (interpreter, imports, model load) is measured on an empty folder
  (fastest of three) and subtracted for ``img/s (net)``; on a loaded machine the CLI rows are
  single runs and noisy, use a larger ``--n`` for them.
* ``--flat N``: scan N images as one stream (a few distinct files, hard-linked N times into
  folders of 1,000: the scanner hashes and decodes each as a file of its own) and print
  ``VmRSS`` at ten checkpoints; the ratio last/first checkpoint should stay near 1 when memory
  does not grow with the number of files.

No psutil: ``/proc`` and ``resource`` only. Nothing asserts; numbers and ratios are printed.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from fakescope.calibration.model import CalibratedModel
from fakescope.models import DEFAULT_MODEL, load_model
from fakescope.pipeline.scan import scan_paths
from proc_memory import reset_peak_rss, status_kib

FLAT_FOLDER_SIZE = 1000  # files per sub-folder in --flat mode, as datasets are usually laid out


# ----------------------------------------------------------------------------- memory


def mib(kib: int) -> str:
    return "?" if kib < 0 else f"{kib / 1024:.1f}"


# ----------------------------------------------------------------------------- images


def photo_like(rng: np.random.Generator, size: int) -> np.ndarray:
    """A colour 1/f-amplitude random field plus pixel noise: a photo's spectrum, no content."""
    ky = np.fft.fftfreq(size)[:, None]
    kx = np.fft.rfftfreq(size)[None, :]
    amplitude = 1.0 / np.maximum(np.hypot(ky, kx), 1.0 / size)
    shape = (3, size, size // 2 + 1)
    phase = rng.standard_normal(shape) + 1j * rng.standard_normal(shape)
    field = np.fft.irfft2(phase * amplitude, s=(size, size), axes=(1, 2))
    field = (field - field.mean(axis=(1, 2), keepdims=True)) / field.std(axis=(1, 2), keepdims=True)
    image = 128.0 + 40.0 * field.transpose(1, 2, 0) + rng.normal(0.0, 3.0, (size, size, 3))
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def generated_like(rng: np.random.Generator, size: int) -> np.ndarray:
    """2x nearest-neighbour upsampling: the periodic trace a CNN generator leaves."""
    small = photo_like(rng, size // 2)
    return np.repeat(np.repeat(small, 2, axis=0), 2, axis=1)


def write_images(folder: Path, size: int, count: int, seed: int) -> list[Path]:
    """``count`` images of ``size`` x ``size``: alternating PNG / JPEG, real-like / fake-like."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed + size)
    paths = []
    for index in range(count):
        pixels = generated_like(rng, size) if index % 4 >= 2 else photo_like(rng, size)
        if index % 2 == 0:
            path = folder / f"img_{index:05d}.png"
            Image.fromarray(pixels).save(path, format="PNG")
        else:
            path = folder / f"img_{index:05d}.jpg"
            Image.fromarray(pixels).save(path, format="JPEG", quality=90)
        paths.append(path)
    return paths


# ----------------------------------------------------------------------------- timing


def scan_once(folder: Path, model: CalibratedModel, batch_size: int) -> tuple[int, int]:
    """(rows, error rows) from one pass over ``folder``."""
    rows = errors = 0
    for result in scan_paths([str(folder)], model, batch_size=batch_size):
        rows += 1
        errors += result.error is not None
    return rows, errors


def bench_pipeline(
    folder: Path, model: CalibratedModel, batch_size: int, repeat: int
) -> dict[str, float]:
    baseline = status_kib("VmRSS")
    reset = reset_peak_rss()  # before the warm-up, which allocates what the timed passes reuse
    scan_once(folder, model, batch_size)  # warm-up: imports, FFT plans, page cache
    times = []
    rows = errors = 0
    for _ in range(repeat):
        start = time.perf_counter()
        rows, errors = scan_once(folder, model, batch_size)
        times.append(time.perf_counter() - start)
    seconds = statistics.median(times)
    return {
        "rows": rows,
        "errors": errors,
        "seconds": seconds,
        "images_per_s": rows / seconds,
        "baseline_kib": baseline,
        "peak_kib": status_kib("VmHWM"),
        "peak_is_per_size": reset,
    }


def bench_cli(folder: Path, model: str, batch_size: int) -> dict[str, float]:
    """One CLI run in a child process: wall time and the child's peak RSS."""
    command = [
        sys.executable, "-m", "fakescope", "scan", str(folder), "--model", model,
        "--format", "jsonl", "--out", os.devnull, "--no-progress", "--batch-size", str(batch_size),
    ]  # fmt: skip
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if completed.returncode != 0:
        raise SystemExit(f"CLI failed ({completed.returncode}): {completed.stderr[-2000:]}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # KiB on Linux
    return {
        "seconds": seconds,
        # ru_maxrss of children is the largest child so far: exact only when it grew.
        "peak_kib": peak if peak >= before else -1,
    }


def bench_flat(
    root: Path, model: CalibratedModel, count: int, size: int, batch_size: int, seed: int
) -> None:
    """Stream ``count`` images and print RSS at ten checkpoints."""
    sources = write_images(root / "sources", size, 8, seed)
    data = root / "flat"
    for index in range(count):
        folder = data / f"part_{index // FLAT_FOLDER_SIZE:04d}"
        folder.mkdir(parents=True, exist_ok=True)
        source = sources[index % len(sources)]
        os.link(source, folder / f"{index:06d}{source.suffix}")
    checkpoints = sorted({max(1, round(count * k / 10)) for k in range(1, 11)})
    print(f"\nflatness: {count} images of {size}px streamed, batch size {batch_size}")
    print(f"{'images':>8} {'VmRSS MiB':>10} {'VmHWM MiB':>10} {'images/s':>9}")
    samples = []
    start = time.perf_counter()
    for done, _ in enumerate(scan_paths([str(data)], model, batch_size=batch_size), start=1):
        if done in checkpoints:
            rss = status_kib("VmRSS")
            samples.append(rss)
            rate = done / (time.perf_counter() - start)
            print(f"{done:>8} {mib(rss):>10} {mib(status_kib('VmHWM')):>10} {rate:>9.1f}")
    if len(samples) >= 2 and samples[0] > 0:
        print(
            f"RSS last/first checkpoint: {samples[-1] / samples[0]:.3f} "
            f"({mib(samples[-1] - samples[0])} MiB difference)"
        )


# ----------------------------------------------------------------------------- report


def environment_lines(model: CalibratedModel, model_name: str) -> list[str]:
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        usable = os.cpu_count() or 1
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    return [
        f"python {platform.python_version()} on {platform.platform()}",
        f"cpu_count {os.cpu_count()}, usable {usable}, load average {load}",
        f"model {model_name} ({model.detector.name}, min side {model.detector.min_image_side})",
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=DEFAULT_MODEL, help="model folder or bundled name")
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512, 1024])
    parser.add_argument("--n", type=int, default=48, help="images per size")
    parser.add_argument("--repeat", type=int, default=3, help="timed passes; median is kept")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--cli", action="store_true", help="also time the command line")
    parser.add_argument("--flat", type=int, default=0, help="images for the flatness run")
    parser.add_argument("--flat-size", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    before_model = status_kib("VmRSS")
    model = load_model(args.model)
    for line in environment_lines(model, args.model):
        print(line)
    after_model = status_kib("VmRSS")
    print(f"RSS before / after loading the model: {mib(before_model)} / {mib(after_model)} MiB")
    print(
        f"{args.n} images per size (PNG/JPEG alternating), batch size {args.batch_size}, "
        f"median of {args.repeat} passes after a warm-up\n"
    )
    results: dict[int, dict[str, float]] = {}
    cli_results: dict[int, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench_scan_") as tmp:
        for size in args.sizes:
            folder = Path(tmp) / f"size_{size}"
            write_images(folder, size, args.n, args.seed)
            results[size] = bench_pipeline(folder, model, args.batch_size, args.repeat)
            if args.cli:
                cli_results[size] = bench_cli(folder, args.model, args.batch_size)
        if args.cli:
            empty = Path(tmp) / "empty"
            empty.mkdir()
            # The fastest of three: start-up is short and other processes only ever add to it.
            startup = min(
                bench_cli(empty, args.model, args.batch_size)["seconds"] for _ in range(3)
            )
        header = f"{'size':>6} {'images/s':>9} {'ms/image':>9} {'MP/s':>7} "
        header += f"{'base MiB':>9} {'peak MiB':>9} {'peak-base':>9} {'errors':>6}"
        print(header)
        for size, r in results.items():
            megapixels = r["images_per_s"] * size * size / 1e6
            print(
                f"{size:>6} {r['images_per_s']:>9.1f} {1e3 / r['images_per_s']:>9.2f} "
                f"{megapixels:>7.1f} {mib(int(r['baseline_kib'])):>9} "
                f"{mib(int(r['peak_kib'])):>9} "
                f"{mib(int(r['peak_kib'] - r['baseline_kib'])):>9} {int(r['errors']):>6}"
            )
        if not all(r["peak_is_per_size"] for r in results.values()):
            print("(could not reset VmHWM: peaks are cumulative over sizes)")
        if len(results) > 1:
            sizes = list(results)
            first = sizes[0]
            print("\nratios to the smallest size (pixels ratio, time-per-image ratio):")
            for size in sizes[1:]:
                pixels = (size / first) ** 2
                slower = results[first]["images_per_s"] / results[size]["images_per_s"]
                print(f"  {size}/{first}: {pixels:.0f}x pixels, {slower:.2f}x time per image")
        if cli_results:
            print(f"\nCLI on an empty folder (start-up, imports, model load): {startup:.2f} s")
            print(f"{'size':>6} {'CLI s':>7} {'img/s':>7} {'img/s (net)':>11} {'CLI peak MiB':>12}")
            for size, r in cli_results.items():
                net = r["seconds"] - startup
                net_rate = f"{args.n / net:.1f}" if net > 0 else "?"
                print(
                    f"{size:>6} {r['seconds']:>7.2f} {args.n / r['seconds']:>7.1f} "
                    f"{net_rate:>11} {mib(int(r['peak_kib'])):>12}"
                )
        if args.flat:
            bench_flat(Path(tmp), model, args.flat, args.flat_size, args.batch_size, args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
