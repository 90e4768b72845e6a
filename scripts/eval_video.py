#!/usr/bin/env python
"""Video evaluation on synthetic partly-manipulated videos: video AUC and temporal IoU.

Steps:

1. **Real sources**: the clips in ``../shared/data/video`` and Debian ``opencv-doc``'s videos
   (:func:`fakescope.video.synth.opencv_doc_videos`: fetched once into a cache folder with
   ``apt-get download`` + ``dpkg-deb -x``; ``Megamind_bugy.avi`` is left out, it is a damaged
   copy of ``Megamind.avi``). Each source gives up to ``--clips-per-source`` clips of
   ``--clip-frames`` frames, evenly spaced, downscaled to ``--max-side`` pixels.
2. **Synthetic set**: for every clip, one *real* video (the clip re-encoded, untouched) and one
   *fake* per manipulation, in which a seeded random segment of 20-50 % of the frames is
   replaced (:func:`fakescope.video.synth.make_synthetic_video`, H.264 CRF 18, all videos of a
   clip encoded the same way). Manipulations: ``generator:ae-transposed`` (the zoo's autoencoder,
   trained with ``--generator-steps`` steps on tiles of real *photos* from
   ``fakescope data real``'s cache, never on the videos; needs torch) and the forgery kinds in
   ``--forgeries`` (OpenCV; ``splice`` takes its donor from a frame of another source).
3. **Scan** every video with ``--model`` (default ``spectral-default``) and the default video
   options (every frame of these short clips is scored) and report, per manipulation and overall:

   - video-level ROC-AUC and AP of the ``mean``, ``max`` and ``topk`` aggregates (reals against
     that manipulation's fakes), and the TPR / FPR of each aggregate at the model's frame
     threshold (how the verdict is made without a video calibration);
   - temporal IoU: for each fake, the IoU in seconds of the union of predicted segments with the
     true segment (0 when nothing is predicted), its mean and the share of fakes with IoU >= 0.5;
     for the reals, the share with any predicted segment;
   - frame-level ROC-AUC inside the fakes (manipulated frames against the untouched frames of
     the same videos): whether the detector sees the manipulation at all.

Usage::

    python scripts/eval_video.py [--model spectral-default] [--data DIR] [--out report.json]
        [--forgeries splice,inpaint] [--clips-per-source 4] [--clip-frames 48]

Everything is seeded. The synthetic set is written to ``--data`` (default: a temporary folder,
deleted afterwards) with each video's ground truth in a JSON file beside it.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from fakescope.evaluation.metrics import binary_metrics
from fakescope.models import DEFAULT_MODEL, load_model
from fakescope.video.scan import AGGREGATES, VideoScanOptions, analyze_video
from fakescope.video.synth import (
    GroundTruth,
    Manipulation,
    count_decodable_frames,
    forgery_manipulation,
    generator_manipulation,
    make_synthetic_video,
    opencv_doc_videos,
    prepare_frame,
)

REPO = Path(__file__).resolve().parents[1]
SHARED_VIDEOS = REPO.parent / "shared" / "data" / "video"
SKIPPED_SOURCES = {"Megamind_bugy.avi"}  # a deliberately damaged copy of Megamind.avi
GENERATOR = "ae-transposed"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- sources


@dataclass(frozen=True)
class Clip:
    source: Path
    start: int
    frames: int
    total: int

    @property
    def name(self) -> str:
        return f"{self.source.stem}-{self.start:05d}"


def real_sources(skip_opencv: bool) -> list[Path]:
    sources = sorted(SHARED_VIDEOS.glob("*.mp4")) if SHARED_VIDEOS.is_dir() else []
    if not skip_opencv:
        try:
            sources += opencv_doc_videos()
        except Exception as exc:  # no apt on this machine: evaluate on what there is
            log(f"opencv-doc videos unavailable ({exc}); using ../shared only")
    return [source for source in sources if source.name not in SKIPPED_SOURCES]


def plan_clips(sources: Sequence[Path], clip_frames: int, per_source: int) -> list[Clip]:
    clips = []
    for source in sources:
        total = count_decodable_frames(source)
        if total < 16:
            log(f"{source.name}: only {total} frames, skipped")
            continue
        length = min(clip_frames, total)
        count = max(1, min(per_source, total // length))
        # Evenly spaced starts over the whole source, so clips show different scenes.
        starts = np.linspace(0, total - length, count).round().astype(int)
        clips += [Clip(source, int(start), length, total) for start in starts]
    return clips


def first_frame(clip: Clip, max_side: int) -> np.ndarray:
    from fakescope.video.decode import open_video

    with open_video(clip.source) as video:
        for number, frame in enumerate(video.frames(None)):
            if number >= clip.start:
                return prepare_frame(frame.pixels, max_side)
    raise ValueError(f"{clip.source} has no frame {clip.start}")


# ----------------------------------------------------------------------------- manipulations


def photo_tiles(count_per_photo: int, seed: int) -> np.ndarray:
    """256x256 crops of the real photos gathered by ``fakescope data real`` (cache)."""
    from fakescope.data.sources import default_cache_dir

    photos = sorted((default_cache_dir() / "photos").glob("*.*"))
    if not photos:
        raise SystemExit(
            "no real photos to train the generator on: run `fakescope data real DIR` first "
            "(it fills the photo cache), or pass --no-generator"
        )
    rng = np.random.default_rng(seed)
    tiles = []
    for path in photos:
        with Image.open(path) as image:
            image = image.convert("RGB")
            scale = 512 / min(image.size)
            size = (max(256, round(image.width * scale)), max(256, round(image.height * scale)))
            pixels = np.asarray(image.resize(size, Image.Resampling.LANCZOS))
        for _ in range(count_per_photo):
            top = int(rng.integers(0, pixels.shape[0] - 256 + 1))
            left = int(rng.integers(0, pixels.shape[1] - 256 + 1))
            tiles.append(pixels[top : top + 256, left : left + 256])
    return np.stack(tiles)


def trained_generator(steps: int, seed: int) -> Any:
    import torch

    from fakescope.data.generators import create_generator
    from fakescope.data.generators.autoencoder import TrainingOptions

    torch.set_num_threads(1)
    generator = create_generator(GENERATOR, options=TrainingOptions(steps=steps, threads=1))
    tiles = photo_tiles(2, seed)
    start = time.perf_counter()
    cache = generator.fit_cached(tiles, seed)
    log(
        f"generator {GENERATOR}: {len(tiles)} photo tiles, {steps} steps, "
        f"{'cache hit' if cache.hit else f'trained in {time.perf_counter() - start:.0f} s'}"
    )
    return generator


ManipulationFactory = Callable[[Clip, int], Manipulation]


def manipulation_factories(
    args: argparse.Namespace, clips: Sequence[Clip]
) -> dict[str, ManipulationFactory]:
    factories: dict[str, ManipulationFactory] = {}
    if not args.no_generator:
        generator = trained_generator(args.generator_steps, args.seed)
        manipulation = generator_manipulation(generator, GENERATOR)
        factories[manipulation.name] = lambda clip, seed: manipulation
    for kind in [k for k in args.forgeries.split(",") if k]:
        if kind == "splice":
            donors = {clip.source: first_frame(clip, args.max_side) for clip in clips}

            def splice(clip: Clip, seed: int, donors: dict[Path, np.ndarray] = donors) -> Any:
                # A frame of another source: pasted content from a different scene.
                others = [source for source in donors if source != clip.source]
                donor = donors[others[seed % len(others)]]
                return forgery_manipulation("splice", seed, donor=donor)

            factories["forge:splice"] = splice
        else:
            factories[f"forge:{kind}"] = lambda clip, seed, kind=kind: forgery_manipulation(
                kind, seed
            )
    return factories


# ----------------------------------------------------------------------------- the set


def build_set(
    clips: Sequence[Clip], factories: dict[str, ManipulationFactory], out: Path, args: Any
) -> list[tuple[Path, GroundTruth]]:
    videos = []
    for number, clip in enumerate(clips):
        seed = args.seed * 1000 + number
        variants: list[tuple[str, Manipulation | None]] = [("real", None)]
        variants += [(name, factory(clip, seed)) for name, factory in factories.items()]
        for name, manipulation in variants:
            path = out / name.replace(":", "-") / f"{clip.name}.mp4"
            truth = make_synthetic_video(
                clip.source,
                path,
                seed=seed,
                manipulation=manipulation,
                start_frame=clip.start,
                n_frames=clip.frames,
                total_frames=clip.total,
                max_side=args.max_side,
            )
            videos.append((path, truth))
        log(f"clip {number + 1}/{len(clips)}: {clip.name} ({clip.frames} frames)")
    return videos


def existing_set(folder: Path) -> list[tuple[Path, GroundTruth]]:
    """A set built before (each video with its ground-truth JSON beside it)."""
    videos = [
        (path.with_suffix(".mp4"), GroundTruth.read(path))
        for path in sorted(folder.glob("*/*.json"))
        if path.with_suffix(".mp4").is_file()
    ]
    if not videos:
        raise SystemExit(f"--reuse: no videos with ground truth in {folder}")
    log(f"reusing {len(videos)} videos from {folder}")
    return videos


# ----------------------------------------------------------------------------- metrics


def interval_iou(predicted: Sequence[tuple[float, float]], truth: tuple[float, float]) -> float:
    """IoU in time between a union of disjoint predicted intervals and one true interval."""
    predicted_length = sum(end - start for start, end in predicted)
    overlap = sum(max(0.0, min(end, truth[1]) - max(start, truth[0])) for start, end in predicted)
    union = predicted_length + (truth[1] - truth[0]) - overlap
    return overlap / union if union > 0 else 0.0


def evaluate(videos: Sequence[tuple[Path, GroundTruth]], model: Any) -> dict[str, Any]:
    options = VideoScanOptions()
    rows = []
    for path, truth in videos:
        report = analyze_video(path, model, options, path=str(path))
        segments = [(s.start_s, s.end_s) for s in report.segments]
        frame_labels = []
        if truth.segment_first_frame is not None and truth.segment_last_frame is not None:
            first, last = truth.segment_first_frame, truth.segment_last_frame
            frame_labels = [int(first <= f.index <= last) for f in report.frames]
        rows.append(
            {
                "video": str(path),
                "group": truth.manipulation or "real",
                "label": truth.label,
                "aggregates": report.aggregates,
                "segments": segments,
                "truth_s": truth.segment_s,
                "iou": interval_iou(segments, truth.segment_s) if truth.segment_s else None,
                "frame_scores": [f.score for f in report.frames],
                "frame_labels": frame_labels,
            }
        )
    threshold = model.calibration.threshold
    groups = sorted({row["group"] for row in rows if row["label"] == 1})
    reals = [row for row in rows if row["label"] == 0]
    report: dict[str, Any] = {
        "frame_threshold": threshold,
        "n_real": len(reals),
        "real_with_segments": float(np.mean([bool(r["segments"]) for r in reals])),
        "groups": {},
    }
    for group in [*groups, "all"]:
        fakes = [r for r in rows if r["label"] == 1 and (group == "all" or r["group"] == group)]
        chosen = reals + fakes
        labels = np.array([r["label"] for r in chosen])
        by_aggregate = {}
        for method in AGGREGATES:
            scores = np.array([r["aggregates"][method] for r in chosen])
            metrics = binary_metrics(labels, scores, threshold=threshold)
            by_aggregate[method] = {
                k: metrics.get(k) for k in ("roc_auc", "ap", "tpr", "fpr", "n_real", "n_fake")
            }
        ious = [r["iou"] for r in fakes]
        frame_scores = [s for r in fakes for s in r["frame_scores"]]
        frame_labels = [label for r in fakes for label in r["frame_labels"]]
        frame_auc = binary_metrics(np.array(frame_labels), np.array(frame_scores))["roc_auc"]
        report["groups"][group] = {
            "aggregates": by_aggregate,
            "mean_iou": float(np.mean(ious)),
            "iou_at_0_5": float(np.mean([iou >= 0.5 for iou in ious])),
            "fakes_with_segments": float(np.mean([bool(r["segments"]) for r in fakes])),
            "frame_auc_inside_fakes": frame_auc,
        }
    report["videos"] = [
        {k: v for k, v in row.items() if k not in {"frame_scores", "frame_labels"}} for row in rows
    ]
    return report


def print_report(report: dict[str, Any], model_name: str) -> None:
    print(
        f"model {model_name}; {report['n_real']} real videos, frame threshold "
        f"{report['frame_threshold']:.4f}; reals with a predicted segment: "
        f"{report['real_with_segments']:.0%}"
    )
    header = f"{'fakes':<26}{'n':>4}"
    for method in AGGREGATES:
        header += f"{method + ' AUC':>10}{'TPR':>6}{'FPR':>6}"
    header += f"{'mIoU':>7}{'IoU>=.5':>8}{'frameAUC':>9}"
    print(header)
    for group, values in report["groups"].items():
        line = f"{group:<26}{values['aggregates']['mean']['n_fake']:>4}"
        for method in AGGREGATES:
            metrics = values["aggregates"][method]
            line += f"{metrics['roc_auc']:>10.3f}{metrics['tpr']:>6.2f}{metrics['fpr']:>6.2f}"
        line += (
            f"{values['mean_iou']:>7.3f}{values['iou_at_0_5']:>8.2f}"
            f"{values['frame_auc_inside_fakes']:>9.3f}"
        )
        print(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--data", help="Write the synthetic set here (kept).")
    parser.add_argument(
        "--reuse", action="store_true", help="Evaluate the set already in --data, do not build."
    )
    parser.add_argument("--out", help="Write the report as JSON here.")
    parser.add_argument("--forgeries", default="splice,inpaint")
    parser.add_argument("--no-generator", action="store_true")
    parser.add_argument("--generator-steps", type=int, default=1000)
    parser.add_argument("--clips-per-source", type=int, default=4)
    parser.add_argument("--clip-frames", type=int, default=48)
    parser.add_argument("--max-side", type=int, default=640)
    parser.add_argument("--skip-opencv-doc", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.reuse and not args.data:
        parser.error("--reuse needs --data")

    model = load_model(args.model)
    out = Path(args.data or tempfile.mkdtemp(prefix="fakescope-video-eval-"))
    try:
        if args.reuse:
            videos = existing_set(out)
        else:
            clips = plan_clips(
                real_sources(args.skip_opencv_doc), args.clip_frames, args.clips_per_source
            )
            if not clips:
                raise SystemExit("no real video sources found")
            log(f"{len(clips)} clips from {len({c.source for c in clips})} sources")
            factories = manipulation_factories(args, clips)
            videos = build_set(clips, factories, out, args)
        report = evaluate(videos, model)
        report["config"] = {k: v for k, v in vars(args).items()}
        print_report(report, model.name)
        if args.out:
            Path(args.out).write_text(json.dumps(report, indent=2, default=str) + "\n")
    finally:
        if not args.data:
            shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
