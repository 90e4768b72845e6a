"""Benchmark the scan engines: images per second with 1 and 2 workers, against the decode floor.

Run as ``python benchmarks/bench_scale.py [--n 300] [--size 512] [--data DIR] [--workers 1 2]
[--model NAME_OR_DIR] [--no-ray]``.

Images: ``--n`` JPEGs of ``--size`` px, cut reproducibly (``--seed``) from real photos that
ship with scikit-learn (and scikit-image when installed): random crops of randomly upscaled
photos, flipped at random, JPEG quality 85-95, written to a temporary folder. ``--data DIR``
scans the first ``--n`` files of DIR instead.

Measured, each as one timed pass over the same files (page cache warm) after the workers have
started and loaded the model (start-up is printed separately):

* ``decode floor``: the scan's own decode stage (``decode_entry``: read, SHA-256, decode,
  the file evidence of :mod:`fakescope.evidence`) on every file, on the same number of worker
  processes (one worker: in this process). Nothing can scan faster than it decodes, so it is
  what the engines are compared with. ``pixels only`` drops the file evidence (read, hash,
  decode the pixels): what decoding alone costs.
* ``local``: :class:`~fakescope.pipeline.engines.local.LocalEngine` with ``W`` workers
  (``--workers 1`` runs in this process, where the spectral FFT may use every core; ``local,
  1 thread`` is the same pinned to one thread, the per-core rate the cluster estimate uses).
* ``ray``: :class:`~fakescope.pipeline.engines.ray_engine.RayEngine` with ``W`` actors on a
  local Ray runtime with ``max(--workers)`` CPUs, writing Parquet: ``end-to-end`` is the whole
  ``write_parquet``, actors' start-up and the write included; ``steady`` is timed by the
  actors themselves, over the window in which all of them were working, and so is their CPU
  time per image (Ray's daemons are not counted).
* scaling efficiency: throughput(W) / (W x throughput(1)); the engine-to-floor ratio is
  floor throughput / engine throughput at the same W (1.0 = as fast as decoding alone).
* stage shares, in CPU time on ``--sample`` files in this process on one thread: decode
  (read, hash, decode the pixels), evidence (the file evidence read in the decode stage),
  features (the detector's ``transform``, when it has one) and model (the rest of scoring).
* ``img/CPU-s``: images per CPU-second, counting the user + system time of this process and
  every process it started (the pool's workers; for Ray, the actors' own clocks): the rate of a
  dedicated core, which other work on a shared machine does not lower as it lowers the
  wall-clock rate. Its ratio between worker counts shows the overhead of parallelism, and the
  cost estimate is built on it.
* peak RSS: this process's ``VmHWM`` (reset per phase where Linux allows), and the largest
  ``VmHWM`` among the local engine's worker processes.

The load average is printed at the start and end: the machine may be shared. An estimate of
the nodes and cost for ``--daily`` images a day is derived from the per-core rate (see
``docs/scale.md`` for the assumptions). Nothing asserts; numbers and ratios are printed.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from itertools import islice
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from fakescope.io.discover import InputEntry, iter_input_files
from fakescope.io.image import decode_image_bytes, read_file_bytes
from fakescope.models import load_model
from fakescope.pipeline.engines.common import ModelSource, ScanLimits, limit_threads_to_one
from fakescope.pipeline.engines.local import LocalEngine, pool_context
from fakescope.pipeline.scan import decode_entry, score_decoded
from fakescope.results import ScanResult
from proc_memory import reset_peak_rss, status_kib

SECONDS_PER_DAY = 86_400
SPECTRAL_MODEL = "spectral-default"

# ----------------------------------------------------------------------------- memory


def mib(kib: int) -> str:
    return "?" if kib < 0 else f"{kib / 1024:.0f}"


# ----------------------------------------------------------------------------- images


def real_photos() -> list[np.ndarray]:
    """Real photos available offline: scikit-learn's two, scikit-image's when installed."""
    from sklearn.datasets import load_sample_images

    photos = list(load_sample_images().images)
    try:
        import skimage.data as samples
    except ImportError:
        return photos
    for name in ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field"):
        photos.append(getattr(samples, name)())
    return photos


def write_tiles(folder: Path, count: int, size: int, seed: int) -> list[str]:
    """``count`` distinct ``size`` px JPEGs cut from real photos, reproducibly."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    photos = [Image.fromarray(photo).convert("RGB") for photo in real_photos()]
    paths = []
    for index in range(count):
        photo = photos[index % len(photos)]
        # Upscale so that a crop fits, and by a random extra so the crops differ in scale too.
        scale = max(size / min(photo.size), 1.0) * rng.uniform(1.0, 1.5)
        width, height = (math.ceil(side * scale) for side in photo.size)
        resized = photo.resize((width, height), Image.Resampling.LANCZOS)
        left = int(rng.integers(0, width - size + 1))
        top = int(rng.integers(0, height - size + 1))
        tile = resized.crop((left, top, left + size, top + size))
        if rng.random() < 0.5:
            tile = tile.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        path = folder / f"tile_{index:05d}.jpg"
        tile.save(path, format="JPEG", quality=int(rng.integers(85, 96)))
        paths.append(str(path))
    return paths


# ----------------------------------------------------------------------------- measurements


def pixel_batch(paths: list[str]) -> int:
    """Only read, hash and decode the pixels: the decode stage without its file evidence."""
    return sum(bool(decode_image_bytes(read_file_bytes(path), path=path).sha256) for path in paths)


def decode_batch(paths: list[str]) -> int:
    """The scan's decode stage alone (read, hash, decode, file evidence); how many decoded."""
    return sum(not isinstance(decode_entry(InputEntry(path)), ScanResult) for path in paths)


def _batches(items: Sequence[str], size: int) -> list[list[str]]:
    iterator = iter(items)
    return [batch for batch in iter(lambda: list(islice(iterator, size)), [])]


def timed(function: Callable[[], object]) -> tuple[float, object]:
    start = time.perf_counter()
    value = function()
    return time.perf_counter() - start, value


def _stat_fields(pid: int | str) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()  # the fields after the command name
    except OSError:
        return None


def tree_cpu_seconds(root: int | None = None) -> float:
    """CPU seconds used so far by a process and all its descendants, dead ones included.

    Each process's user + system time plus that of its children that have exited and been
    waited for (``cutime``, ``cstime``); live descendants are found through their parent ids.
    This counts the pool's workers: all the CPU a local scan costs, whichever process spends
    it. (Ray's workers are not descendants that can be counted this way.)
    """
    root = os.getpid() if root is None else root
    ticks = os.sysconf("SC_CLK_TCK")
    children: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        fields = _stat_fields(name) if name.isdigit() else None
        if fields is not None:
            children.setdefault(int(fields[1]), []).append(int(name))  # fields[1]: ppid
    total, stack = 0.0, [root]
    while stack:
        pid = stack.pop()
        fields = _stat_fields(pid)
        if fields is not None:
            total += sum(int(value) for value in fields[11:15]) / ticks
        stack.extend(children.get(pid, []))
    return total


def measured(function: Callable[[], object]) -> tuple[float, float, object]:
    """(wall seconds, CPU seconds of this process tree, value) of one call.

    CPU seconds do not grow when other work shares the cores, so images per CPU-second is the
    rate a dedicated core would reach, even on a busy machine (where wall rates fall).
    """
    cpu_before = tree_cpu_seconds()
    seconds, value = timed(function)
    return seconds, tree_cpu_seconds() - cpu_before, value


def cpu_timed(function: Callable[[], object]) -> tuple[float, object]:
    start = time.process_time()
    value = function()
    return time.process_time() - start, value


def decode_floor(
    paths: Sequence[str],
    workers: int,
    batch_size: int,
    stage: Callable[[list[str]], int] = decode_batch,
) -> dict[str, float]:
    batches = _batches(paths, batch_size)
    if workers == 1:
        seconds, cpu, _ = measured(lambda: [stage(batch) for batch in batches])
        startup = 0.0
    else:
        with ProcessPoolExecutor(workers, mp_context=pool_context()) as pool:
            startup, _ = timed(lambda: list(pool.map(stage, [[]] * workers)))
            seconds, cpu, _ = measured(lambda: list(pool.map(stage, batches)))
    return {
        "images_per_s": len(paths) / seconds,
        "images_per_cpu_s": len(paths) / cpu,
        "startup_s": startup,
    }


def bench_local(
    folder: Path, source: ModelSource, workers: int, limits: ScanLimits, repeat: int
) -> dict[str, float]:
    reset_peak_rss()
    with LocalEngine(source, workers=workers, limits=limits) as engine:
        startup, _ = timed(engine.start)
        # A benchmark may look inside: the executor exposes no process list.
        pids = list(getattr(engine._pool, "_processes", None) or {})
        times, cpus, rows = [], [], 0
        for _ in range(repeat):
            seconds, cpu, results = measured(lambda: list(engine.scan([str(folder)])))
            times.append(seconds)
            cpus.append(cpu)
            rows = len(results)  # type: ignore[arg-type]
        worker_peak = max((status_kib("VmHWM", pid) for pid in pids), default=-1)
    return {
        "images_per_s": rows / statistics.median(times),
        "images_per_cpu_s": rows / statistics.median(cpus),
        "startup_s": startup,
        "parent_peak_kib": status_kib("VmHWM"),
        "worker_peak_kib": worker_peak,
    }


def timed_actor_class(log_path: Path) -> type:
    """A :class:`ScanActor` that appends each call's timings to ``log_path`` (JSON lines).

    Defined in here, it travels to the actors by value (cloudpickle), log path included.
    """
    from fakescope.pipeline.engines.ray_engine import ScanActor

    class TimedScanActor(ScanActor):
        def __call__(self, batch: Any) -> Any:
            wall, cpu = time.time(), time.process_time()
            table = super().__call__(batch)
            call = {
                "pid": os.getpid(),
                "start": wall,
                "end": time.time(),
                "cpu": time.process_time() - cpu,
                "rows": table.num_rows,
            }
            with open(log_path, "a") as log:
                log.write(json.dumps(call) + "\n")
            return table

    return TimedScanActor


def all_actors_rate(calls: list[dict[str, float]]) -> float:
    """Images per second while every actor was working: the steady rate of the whole pool.

    Actors start seconds apart, and one finishes its last call before the others; over a
    short benchmark those edges would weigh on the rate as they do not over a long scan. The
    window runs from the last actor's first call to the first actor's last call; each call
    counts for the share of its rows that falls inside it.
    """
    by_actor: dict[int, list[dict[str, float]]] = {}
    for call in calls:
        by_actor.setdefault(int(call["pid"]), []).append(call)
    start = max(min(call["start"] for call in own) for own in by_actor.values())
    end = min(max(call["end"] for call in own) for own in by_actor.values())
    if end <= start:
        return float("nan")
    rows = 0.0
    for call in calls:
        inside = min(call["end"], end) - max(call["start"], start)
        if inside > 0:
            rows += call["rows"] * inside / (call["end"] - call["start"])
    return rows / (end - start)


def bench_ray(
    paths: Sequence[str], source: ModelSource, workers: int, limits: ScanLimits, tmp: Path
) -> dict[str, float]:
    """Ray, timed by the driver (end to end) and by the actors (their working span).

    Each scan starts its own actors, which take seconds to import the scan stack and load the
    model, and ends with the Parquet write: ``end-to-end`` includes both. The steady rate is
    measured while all the actors work (:func:`all_actors_rate`): no start-up, no write. The
    actors' CPU time per image comes from their own clocks.
    """
    from fakescope.pipeline.engines.ray_engine import RayEngine

    log_path = tmp / f"ray{workers}_calls.jsonl"
    actor = timed_actor_class(log_path)
    engine = RayEngine(source, workers=workers, limits=limits, actor_class=actor)
    start = time.time()
    whole, rows = timed(lambda: engine.write_parquet(paths, tmp / f"ray{workers}.parquet"))
    calls = [json.loads(line) for line in log_path.read_text().splitlines()]
    first_start = min(call["start"] for call in calls)
    scanned = sum(call["rows"] for call in calls)
    return {
        "images_per_s": all_actors_rate(calls),
        "images_per_cpu_s": scanned / sum(call["cpu"] for call in calls),
        "startup_s": first_start - start,
        "end_to_end_images_per_s": int(rows) / whole,  # type: ignore[call-overload]
        "actors": len({call["pid"] for call in calls}),
    }


def stage_shares(paths: Sequence[str], model_name: str, batch_size: int) -> dict[str, float]:
    """CPU seconds per image in each stage, on one thread in this process.

    ``decode``: read, hash, decode the pixels; ``evidence``: the rest of the decode stage (the
    file evidence: JPEG tables, EXIF, C2PA, ...); ``features``: the detector's ``transform``,
    when it has one; ``model``: the rest of scoring (classifier, evidence, verdicts).
    """
    model = load_model(model_name)
    limit_threads_to_one(model)
    detector = model.detector
    transform = getattr(detector, "transform", None)
    decode = pixel_decode = features = scoring = 0.0
    for batch in _batches(paths, batch_size):
        pixel_decode += cpu_timed(lambda batch=batch: pixel_batch(batch))[0]
        seconds, decoded = cpu_timed(
            lambda batch=batch: [
                decode_entry(InputEntry(p), min_side=detector.min_image_side) for p in batch
            ]
        )
        decode += seconds
        pixels = [item.pixels for item in decoded if not isinstance(item, ScanResult)]  # type: ignore[union-attr]
        if transform is not None and pixels:
            features += cpu_timed(lambda pixels=pixels: transform(pixels))[0]
        scoring += cpu_timed(lambda decoded=decoded: score_decoded(decoded, model))[0]  # type: ignore[arg-type]
    n = len(paths)
    model_part = max(scoring - features, 0.0)
    return {
        "decode": pixel_decode / n,
        "evidence": max(decode - pixel_decode, 0.0) / n,
        "features": features / n,
        "model": model_part / n,
    }


# ----------------------------------------------------------------------------- report


def environment() -> list[str]:
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next(line.split(":", 1)[1].strip() for line in info if "model name" in line)
    except (OSError, StopIteration):
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 1
    memory = -1
    try:
        with open("/proc/meminfo") as info:
            memory = int(next(line for line in info if line.startswith("MemTotal")).split()[1])
    except (OSError, StopIteration):
        pass
    return [
        f"python {platform.python_version()} on {platform.platform()}",
        f"cpu {cpu}, {os.cpu_count()} logical CPUs ({usable} usable), RAM {mib(memory)} MiB",
    ]


def load_line() -> str:
    return "load average " + ", ".join(f"{value:.2f}" for value in os.getloadavg())


def estimate(per_core: float, decode_per_core: float, args: argparse.Namespace) -> list[str]:
    """Nodes and cost for ``--daily`` images a day from the measured per-core rates.

    CPU nodes: every core runs a worker at the measured scan rate. GPU nodes (extrapolated,
    nothing here runs on a GPU): the GPU takes features and model, so a node's CPU cores only
    read and decode, at the measured decode-floor rate; the GPU is assumed not to be the
    bottleneck, which holds for the spectral model (an FFT per image) and for small CNNs.
    """
    mean_rate = args.daily / SECONDS_PER_DAY
    peak_rate = mean_rate * args.peak_factor
    cores = peak_rate / (per_core * args.utilisation)
    cpu_nodes = math.ceil(cores / args.node_vcpus)
    cpu_cost = cpu_nodes * args.node_vcpus * args.vcpu_hour_price * 24
    core_hours = args.daily / per_core / 3600  # if nodes scaled with the load exactly
    lines = [
        f"{args.daily:,} images/day = {mean_rate:.1f}/s on average, {peak_rate:.1f}/s at a "
        f"{args.peak_factor:g}x peak; {per_core:.1f} images/s per core at "
        f"{args.utilisation:.0%} target utilisation",
        f"CPU: {cores:.1f} cores at peak = {cpu_nodes} nodes of {args.node_vcpus} vCPUs, "
        f"${cpu_cost:,.0f}/day provisioned for the peak at ${args.vcpu_hour_price}/vCPU-h; "
        f"${core_hours * args.vcpu_hour_price:,.0f}/day if it autoscales with the load "
        f"({core_hours:,.0f} core-hours)",
    ]
    gpu_node_rate = args.gpu_node_vcpus * decode_per_core * args.utilisation
    gpu_nodes = math.ceil(peak_rate / gpu_node_rate)
    gpu_cost = gpu_nodes * args.gpu_node_hour_price * 24
    gpu_hours = args.daily / (args.gpu_node_vcpus * decode_per_core) / 3600
    lines.append(
        f"GPU (extrapolated): {decode_per_core:.1f} decodes/s per core x "
        f"{args.gpu_node_vcpus} vCPUs = {gpu_node_rate:.0f} images/s per node at "
        f"{args.utilisation:.0%}: {gpu_nodes} nodes at peak, ${gpu_cost:,.0f}/day at "
        f"${args.gpu_node_hour_price}/node-h; ${gpu_hours * args.gpu_node_hour_price:,.0f}/day "
        "autoscaled"
    )
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=300, help="images to scan")
    parser.add_argument("--size", type=int, default=512, help="side of the generated JPEGs")
    parser.add_argument("--data", type=Path, help="scan the first --n files of this folder")
    # The goals are set for the spectral model, whatever the package's default is.
    parser.add_argument("--model", default=SPECTRAL_MODEL, help="model folder or bundled name")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=1, help="timed passes (median)")
    parser.add_argument("--sample", type=int, default=64, help="files timed stage by stage")
    parser.add_argument("--no-ray", action="store_true", help="skip the Ray engine")
    parser.add_argument("--seed", type=int, default=0)
    estimate_options = parser.add_argument_group("cost estimate")
    estimate_options.add_argument("--daily", type=int, default=10_000_000)
    estimate_options.add_argument("--peak-factor", type=float, default=2.0)
    estimate_options.add_argument("--utilisation", type=float, default=0.7)
    estimate_options.add_argument("--node-vcpus", type=int, default=16)
    estimate_options.add_argument("--vcpu-hour-price", type=float, default=0.045)
    estimate_options.add_argument("--gpu-node-vcpus", type=int, default=8)
    estimate_options.add_argument("--gpu-node-hour-price", type=float, default=1.0)
    args = parser.parse_args(argv)

    for line in environment():
        print(line)
    print(f"at start: {load_line()}")
    limits = ScanLimits(batch_size=args.batch_size)
    with tempfile.TemporaryDirectory(prefix="bench_scale_") as tmp:
        folder = Path(tmp) / "images"
        if args.data is not None:
            folder.mkdir()
            for index, entry in enumerate(islice(iter_input_files([str(args.data)]), args.n)):
                os.symlink(
                    os.path.abspath(entry.path), folder / f"{index:06d}_{Path(entry.path).name}"
                )
            print(f"{args.n} files from {args.data} (symlinked)")
        else:
            seconds, _ = timed(lambda: write_tiles(folder, args.n, args.size, args.seed))
            print(f"{args.n} JPEGs of {args.size} px from real photos, written in {seconds:.1f} s")
        paths = [entry.path for entry in iter_input_files([str(folder)])]
        print(f"model {args.model}, batch size {args.batch_size}\n")

        shares = stage_shares(paths[: args.sample], args.model, args.batch_size)
        total = sum(shares.values())
        print(f"stages on one thread, {min(args.sample, len(paths))} files (CPU ms/image, share):")
        for stage, seconds in shares.items():
            print(f"  {stage:<9} {seconds * 1e3:7.2f} ms  {seconds / total:6.1%}")
        print(f"  {'total':<9} {total * 1e3:7.2f} ms  = {1 / total:.1f} images/s per core\n")

        floor = {w: decode_floor(paths, w, args.batch_size) for w in args.workers}
        pixels = {w: decode_floor(paths, w, args.batch_size, pixel_batch) for w in args.workers}
        source = ModelSource.of(args.model)
        local = {w: bench_local(folder, source, w, limits, args.repeat) for w in args.workers}
        pinned_model = load_model(args.model)
        limit_threads_to_one(pinned_model)
        pinned = ModelSource.of(args.model, preloaded=pinned_model)
        local_one_thread = bench_local(folder, pinned, 1, limits, args.repeat)

        ray: dict[int, dict[str, float]] = {}
        if not args.no_ray:
            import ray as ray_module

            ray_module.init(
                num_cpus=max(args.workers), include_dashboard=False, logging_level="ERROR"
            )
            for w in args.workers:
                ray[w] = bench_ray(paths, source, w, limits, Path(tmp))
            ray_module.shutdown()

    table: list[tuple[object, ...]] = [
        (
            "engine",
            "W",
            "images/s",
            "floor/this",
            "img/CPU-s",
            "start s",
            "parent MiB",
            "worker MiB",
        )
    ]
    for w in args.workers:
        r = floor[w]
        table.append(
            ("decode floor", w, r["images_per_s"], 1.0, r["images_per_cpu_s"], r["startup_s"])
        )
    for w in args.workers:
        r = pixels[w]
        vs_floor = floor[w]["images_per_s"] / r["images_per_s"]
        rates = (r["images_per_s"], vs_floor, r["images_per_cpu_s"], r["startup_s"])
        table.append(("pixels only", w, *rates))
    for w in args.workers:
        r = local[w]
        vs_floor = floor[w]["images_per_s"] / r["images_per_s"]
        peaks = (mib(int(r["parent_peak_kib"])), mib(int(r["worker_peak_kib"])))
        rates = (r["images_per_s"], vs_floor, r["images_per_cpu_s"], r["startup_s"])
        table.append(("local", w, *rates, *peaks))
    r = local_one_thread
    vs_floor = floor[args.workers[0]]["images_per_s"] / r["images_per_s"]
    rates = (r["images_per_s"], vs_floor, r["images_per_cpu_s"], r["startup_s"])
    table.append(("local, 1 thread", 1, *rates, mib(int(r["parent_peak_kib"]))))
    for w, r in ray.items():
        vs_floor = floor[w]["images_per_s"] / r["images_per_s"]
        rates = (r["images_per_s"], vs_floor, r["images_per_cpu_s"], r["startup_s"])
        table.append(("ray steady", w, *rates))
        table.append(("ray end-to-end", w, r["end_to_end_images_per_s"]))
    for cells in table:
        widths = (16, 3, 10, 11, 10, 9, 11, 11)
        texts = [f"{c:.2f}" if isinstance(c, float) else str(c) for c in cells]
        print(
            "".join(
                t.ljust(n) if i == 0 else t.rjust(n)
                for i, (t, n) in enumerate(zip(texts, widths, strict=False))
            )
        )

    if len(args.workers) >= 2:
        low, high = args.workers[0], args.workers[-1]
        factor = high / low

        def efficiency(rates: dict[int, dict[str, float]], key: str = "images_per_s") -> float:
            return rates[high][key] / (factor * rates[low][key])

        parts = [f"decode floor {efficiency(floor):.2f}", f"local {efficiency(local):.2f}"]
        if ray:
            parts.append(f"ray steady {efficiency(ray):.2f}")
            parts.append(f"ray end-to-end {efficiency(ray, 'end_to_end_images_per_s'):.2f}")
        print(f"\nscaling efficiency {low} -> {high} workers: " + ", ".join(parts))
        machine = efficiency(floor)
        parts = [f"local {efficiency(local) / machine:.2f}"]
        if ray:
            parts.append(f"ray steady {efficiency(ray) / machine:.2f}")
        print(
            "scaling efficiency over the decode floor's (the share of an extra core the machine "
            "gave the floor's extra worker): " + ", ".join(parts)
        )

        def cpu_efficiency(rates: dict[int, dict[str, float]], key: str) -> float:
            return rates[high][key] / rates[low][key]

        parts = [
            f"decode floor {cpu_efficiency(floor, 'images_per_cpu_s'):.2f}",
            f"local {cpu_efficiency(local, 'images_per_cpu_s'):.2f}",
        ]
        if ray:
            parts.append(f"ray actors {cpu_efficiency(ray, 'images_per_cpu_s'):.2f}")
        print(
            f"CPU cost per image at {low} / at {high} workers (1.00: no overhead from "
            "parallelism, what wall-clock scaling reaches on dedicated cores): " + ", ".join(parts)
        )
        goal = floor[high]["images_per_s"] / local[high]["images_per_s"]
        verdict = "met" if goal <= 1.3 else "not met"
        print(
            f"goal, local within 1.3x of the decode floor at {high} workers: {goal:.2f}x, {verdict}"
        )
        if ray:
            ray_efficiency = efficiency(ray)
            verdict = "met" if ray_efficiency >= 0.8 else "not met"
            print(f"goal, Ray scaling efficiency >= 0.8: {ray_efficiency:.2f}, {verdict}")
    per_core = local_one_thread["images_per_cpu_s"]
    decode_per_core = floor[args.workers[0]]["images_per_cpu_s"]
    print("\nestimate (per core: one worker on one thread, images per CPU-second):")
    for line in estimate(per_core, decode_per_core, args):
        print(f"  {line}")
    print(f"\nat end: {load_line()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
