"""Benchmark video scanning: decode and scan frames per second, peak memory on a long 1080p video.

Run as ``python benchmarks/bench_video.py [--model NAME] [--minutes 10] [--fps 30] [--gop 60]
[--frames 64 600] [--decode-seconds 20] [--video PATH] [--workdir DIR] [--keep]``.

1. **The test video** (unless ``--video``): ``--minutes`` of 1920x1080 at ``--fps`` from
   FFmpeg's ``testsrc2`` pattern (moving shapes, a counter, colour bars) through PyAV's filter
   graph, encoded with libx264 ``preset=ultrafast crf=35`` on 2 threads (cheap to make, and the
   same command makes the same video) with a keyframe every ``--gop`` frames (default 60: 2 s,
   as phones and streaming sites use; the GOP decides what a seek costs), into a temporary
   folder that is deleted at the end unless ``--keep`` (or ``--workdir``) says otherwise. Its
   time to make is printed, not benchmarked.
2. **Decode**: every frame of the first ``--decode-seconds`` seconds, decoded and converted to
   RGB (:meth:`fakescope.video.decode.VideoReader.frames` with no budget): frames per second.
3. **Scan** of the whole video with ``--model`` (default: the bundled default model), once per
   ``--frames`` budget and
   sampling (``uniform`` and ``keyframe``): :func:`fakescope.video.scan.scan_video`, i.e.
   sampling, seeking, decoding, scoring and summarising. Printed: wall time, sampled frames per
   second of wall time, the model's own frames per second (scoring only, timed around
   ``predict_with_evidence``), and the **peak RSS** of the process.

Every measurement runs in a fresh child process (this script with ``--child``), so each peak RSS
(``VmHWM`` from ``/proc/self/status``, Linux) is that measurement's own and includes the
interpreter, numpy, the model and PyAV. Nothing asserts; the acceptance (a 10-minute 1080p video
scanned in under 1.5 GB) is printed as a comparison.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from proc_memory import status_kib

ACCEPTANCE_MIB = 1536.0


# ----------------------------------------------------------------------------- the video


def make_test_video(path: Path, minutes: float, fps: int, gop: int) -> dict[str, Any]:
    """``minutes`` of 1080p ``testsrc2`` encoded cheaply with x264 (see the module docstring)."""
    import av
    import av.filter

    start = time.perf_counter()
    graph = av.filter.Graph()
    source = graph.add("testsrc2", f"size=1920x1080:rate={fps}:duration={minutes * 60}")
    to_yuv = graph.add("format", "pix_fmts=yuv420p")
    sink = graph.add("buffersink")
    source.link_to(to_yuv)
    to_yuv.link_to(sink)
    graph.configure()
    frames = 0
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 1920, 1080, "yuv420p"
        stream.codec_context.gop_size = gop
        stream.codec_context.options = {"preset": "ultrafast", "crf": "35"}
        stream.codec_context.thread_count = 2  # a fixed split: the same bytes on any machine
        while True:
            try:
                frame = graph.pull()
            except (av.error.EOFError, av.error.BlockingIOError):
                break
            frame.pts = frames
            # testsrc2 marks each frame as an I picture, which encoders obey as "force a
            # keyframe"; cleared, the encoder places keyframes by its GOP.
            frame.pict_type = av.video.frame.PictureType.NONE
            for packet in stream.encode(frame):
                container.mux(packet)
            frames += 1
        for packet in stream.encode():
            container.mux(packet)
    return {
        "frames": frames,
        "seconds_to_make": time.perf_counter() - start,
        "bytes": path.stat().st_size,
    }


# ----------------------------------------------------------------------------- children


def child_decode(video: str, seconds: float) -> dict[str, Any]:
    from fakescope.video.decode import open_video

    start = time.perf_counter()
    count = 0
    with open_video(video) as reader:
        for frame in reader.frames(None):
            if frame.time_s >= seconds:
                break
            count += 1
    elapsed = time.perf_counter() - start
    return {"frames": count, "seconds": elapsed, "peak_kib": status_kib("VmHWM")}


def child_scan(video: str, frames: int, sampling: str, model_name: str) -> dict[str, Any]:
    from fakescope.models import load_model
    from fakescope.video.scan import VideoScanOptions, scan_video

    model = load_model(model_name)
    detector = model.detector
    scoring = {"seconds": 0.0, "frames": 0}
    original = detector.predict_with_evidence

    def timed(images: Any) -> Any:
        begin = time.perf_counter()
        result = original(images)
        scoring["seconds"] += time.perf_counter() - begin
        scoring["frames"] += len(images)
        return result

    detector.predict_with_evidence = timed  # instance attribute: this process only
    options = VideoScanOptions(max_frames=frames, sampling=sampling)  # type: ignore[arg-type]
    baseline = status_kib("VmRSS")
    start = time.perf_counter()
    row = scan_video(video, model, options)
    elapsed = time.perf_counter() - start
    if row.error is not None:
        raise SystemExit(f"scan failed: {row.error_kind}: {row.error}")
    video_evidence = row.evidence["video"]
    return {
        "sampled": video_evidence["frames_sampled"],
        "seconds": elapsed,
        "scoring_seconds": scoring["seconds"],
        "scored": scoring["frames"],
        "baseline_kib": baseline,
        "peak_kib": status_kib("VmHWM"),
        "warnings": video_evidence["warnings"],
    }


def run_child(*arguments: str) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", *arguments]
    completed = subprocess.run(command, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise SystemExit(f"child {arguments} failed: {completed.stderr[-2000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="A model folder or bundled name (default: the default).")
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--gop", type=int, default=60, help="Frames between keyframes.")
    parser.add_argument("--frames", type=int, nargs="+", default=[64, 600])
    parser.add_argument("--decode-seconds", type=float, default=20.0)
    parser.add_argument("--video", help="Benchmark this video instead of making one.")
    parser.add_argument("--workdir", help="Make the video here (kept).")
    parser.add_argument("--keep", action="store_true", help="Keep the temporary video.")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        kind, video, *rest = args.child
        if kind == "decode":
            result = child_decode(video, float(rest[0]))
        else:
            result = child_scan(video, int(rest[0]), rest[1], rest[2])
        print(json.dumps(result))
        return

    import av

    import fakescope
    from fakescope.models import DEFAULT_MODEL

    model_name = args.model or DEFAULT_MODEL
    ffmpeg = getattr(av, "ffmpeg_version_info", "?")
    print(
        f"fakescope {fakescope.__version__}, PyAV {av.__version__} (FFmpeg {ffmpeg}), "
        f"Python {platform.python_version()}, {os.cpu_count()} CPUs ({platform.machine()}); "
        f"model {model_name}"
    )
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="fakescope-bench-video-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        if args.video:
            video = Path(args.video)
        else:
            name = f"testsrc2-1080p-{args.minutes:g}min-{args.fps}fps-gop{args.gop}.mp4"
            video = workdir / name
            if not video.exists():
                print(f"making {video.name} ...", flush=True)
                made = make_test_video(video, args.minutes, args.fps, args.gop)
                rate = made["frames"] / made["seconds_to_make"]
                print(
                    f"  {made['frames']} frames, {made['bytes'] / 1e6:.0f} MB, made in "
                    f"{made['seconds_to_make']:.0f} s ({rate:.0f} frames/s to generate and encode)"
                )
        from fakescope.video.decode import open_video

        with open_video(video) as reader:
            info = reader.info
        size_mb = video.stat().st_size / 1e6
        print(
            f"video: {info.width}x{info.height} {info.codec}, {info.fps:.3g} fps, "
            f"{info.duration_s:.1f} s, {info.frame_count} frames, {size_mb:.0f} MB"
        )

        decoded = run_child("decode", str(video), str(args.decode_seconds))
        print(
            f"\ndecode (every frame of the first {args.decode_seconds:g} s, to RGB): "
            f"{decoded['frames'] / decoded['seconds']:.1f} frames/s "
            f"({decoded['frames']} frames in {decoded['seconds']:.1f} s), "
            f"peak RSS {decoded['peak_kib'] / 1024:.0f} MiB"
        )

        print(
            f"\n{'sampling':<9}{'frames':>7}{'wall s':>8}{'frames/s':>9}"
            f"{'model f/s':>10}{'peak MiB':>9}  vs 1.5 GB"
        )
        for sampling in ("uniform", "keyframe"):
            for budget in args.frames:
                result = run_child("scan", str(video), str(budget), sampling, model_name)
                peak_mib = result["peak_kib"] / 1024
                model_fps = (
                    result["scored"] / result["scoring_seconds"]
                    if result["scoring_seconds"]
                    else float("nan")
                )
                verdict = "under" if peak_mib < ACCEPTANCE_MIB else "OVER"
                print(
                    f"{sampling:<9}{result['sampled']:>7}{result['seconds']:>8.1f}"
                    f"{result['sampled'] / result['seconds']:>9.1f}{model_fps:>10.1f}"
                    f"{peak_mib:>9.0f}  {verdict}"
                    + (f"  warnings: {result['warnings']}" if result["warnings"] else "")
                )
    finally:
        if not (args.keep or args.workdir):
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
