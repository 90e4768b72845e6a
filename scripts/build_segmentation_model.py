"""Train, calibrate and evaluate the bundled segmentation localizer (``segmentation-default``).

Usage::

    OMP_NUM_THREADS=1 nice -n 10 python scripts/build_segmentation_model.py \\
        --benchmark work-data/benchmark \\
        --out src/fakescope/models/localization/segmentation-default \\
        --report work-data/localization/segmentation-report.json

Splits come from :func:`fakescope.data.benchmark_splits.localization_splits` (seed 0, disjoint
by photo): the model trains on the train split (every forgery kind and the pristine tiles, plus
forgeries made on the fly from the train split's pristine tiles), the threshold is calibrated on
the calibration split, and the test split is scored by ``fakescope.evaluation.localization``:
the same report and tables as ``fakescope eval --task localize --perturb clean``.

Training goes in rounds (``--warm-start DIR``, hyper-parameters by ``--param NAME=JSON``). A
model trained under perturbations (``--param perturb_share=0.6 --param 'perturb_specs=[...]'``)
is calibrated on the calibration split spread over ``--calibrate-perturb SPEC`` (repeatable).
``--evaluate-only --recalibrate`` re-calibrates a saved model after changing inference settings.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from rich.console import Console

from fakescope.cli.eval_cmd import print_localization_tables
from fakescope.data.benchmark_splits import LocalizationItem, localization_splits
from fakescope.data.perturb import parse_spec
from fakescope.evaluation.localization import CLEAN, localization_report, prepare_item
from fakescope.localizers.segmentation import SegmentationLocalizer
from fakescope.reports.writers import write_json


def read_items(
    items: list[LocalizationItem], seed: int, specs: Sequence[str] = (CLEAN,)
) -> tuple[list[np.ndarray], list[np.ndarray | None], list[dict[int, list[int]] | None]]:
    """Pixels, masks and JPEG tables, read as the evaluation reads them; item ``i`` goes
    through perturbation spec ``specs[i % len(specs)]`` (masks follow geometric steps)."""
    chains = [None if spec == CLEAN else parse_spec(spec) for spec in specs]
    prepared = [
        prepare_item(item, chains[i % len(specs)], seed, specs[i % len(specs)])
        for i, item in enumerate(items)
    ]
    return (
        [p.pixels for p in prepared],
        [p.truth for p in prepared],
        [p.jpeg_quantization for p in prepared],
    )


def calibrate_and_save(
    localizer: SegmentationLocalizer,
    items: list[LocalizationItem],
    out: Path,
    seed: int,
    specs: Sequence[str] = (CLEAN,),
) -> None:
    """Pick the pixel and image thresholds on ``items`` (the calibration split) and save."""
    localizer.calibrate(*read_items(items, seed, specs))
    localizer.save(out)
    print(
        f"calibrated thresholds: pixel {localizer.threshold:.3f}, image "
        f"{localizer.image_threshold:.3f}; saved {out}",
        flush=True,
    )


def read_extra_pristine(paths: Sequence[Path], min_side: int) -> list[np.ndarray]:
    """The images under ``paths`` (files or folders), RGB; unreadable or too small ones are
    reported and skipped."""
    from fakescope.errors import FakescopeError
    from fakescope.io.discover import iter_input_files
    from fakescope.io.image import load_image

    images = []
    for entry in iter_input_files([str(path) for path in paths]):
        if entry.error is not None:
            print(f"skipped {entry.path}: {entry.error}", flush=True)
            continue
        try:
            pixels = load_image(entry.path).pixels
        except FakescopeError as exc:
            print(f"skipped {entry.path}: {exc}", flush=True)
            continue
        if min(pixels.shape[:2]) < min_side:
            print(f"skipped {entry.path}: smaller than {min_side} px", flush=True)
            continue
        images.append(pixels)
    return images


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--benchmark", type=Path, default=Path("work-data/benchmark"))
    parser.add_argument(
        "--out", type=Path, default=Path("src/fakescope/models/localization/segmentation-default")
    )
    parser.add_argument(
        "--report", type=Path, default=Path("work-data/localization/segmentation-report.json")
    )
    parser.add_argument("--seed", type=int, default=0, help="split and training seed")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (0: default)")
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=JSON",
        help="override a hyper-parameter, e.g. --param epochs=2 --param 'widths=[8,16]'",
    )
    parser.add_argument(
        "--warm-start",
        type=Path,
        default=None,
        metavar="DIR",
        help="go on training the model saved in DIR (its params, overridden by --param)",
    )
    parser.add_argument(
        "--evaluate-only", action="store_true", help="load --out instead of training"
    )
    parser.add_argument(
        "--recalibrate",
        action="store_true",
        help="with --evaluate-only: apply the --param overrides (inference settings such as "
        "flip_average, score_top_share), recalibrate on the calibration split and re-save --out",
    )
    parser.add_argument(
        "--calibrate-perturb",
        action="append",
        default=[],
        metavar="SPEC",
        help="calibrate on the calibration split spread over these perturbation specs "
        "('clean' included if given; default: clean only), for a model trained under "
        "perturbations; repeatable",
    )
    parser.add_argument(
        "--extra-pristine",
        action="append",
        default=[],
        type=Path,
        metavar="PATH",
        help="untouched images (files or folders) added to training as pristine hard "
        "negatives, e.g. photos unlike the benchmark's; never used to calibrate or test; "
        "repeatable",
    )
    parser.add_argument(
        "--extra-pristine-repeat",
        type=int,
        default=1,
        help="times each extra pristine image is shown per epoch (a new random crop each time)",
    )
    args = parser.parse_args(argv)
    calibration_specs = tuple(args.calibrate_perturb) or (CLEAN,)
    if args.recalibrate and not args.evaluate_only:
        parser.error("--recalibrate goes with --evaluate-only (training always calibrates)")

    splits = localization_splits(args.benchmark, seed=args.seed)
    for name, items in splits.items():
        print(f"{name}: {len(items)} images", flush=True)
    overrides = {}
    for override in args.param:
        name, _, value = override.partition("=")
        overrides[name] = json.loads(value)
    if args.evaluate_only:
        localizer = SegmentationLocalizer.load(args.out)
        if args.recalibrate:
            localizer.set_params(**overrides)
            localizer.check_params()
            calibrate_and_save(
                localizer, splits["calibration"], args.out, args.seed, calibration_specs
            )
    else:
        params = {"random_state": args.seed, "threads": args.threads, **overrides}
        if args.warm_start is not None:
            localizer = SegmentationLocalizer.load(args.warm_start)
            params["warm_start"] = True
            localizer.set_params(**params)
        else:
            localizer = SegmentationLocalizer(**params)
        localizer.check_params()
        images, masks, _ = read_items(splits["train"], args.seed)
        extra = read_extra_pristine(args.extra_pristine, localizer.crop_size)
        if extra:
            print(f"{len(extra)} extra pristine images x {args.extra_pristine_repeat}", flush=True)
        for _ in range(max(0, args.extra_pristine_repeat)):
            images += extra
            masks += [None] * len(extra)
        start = time.monotonic()

        def progress(done: int, total: int) -> None:
            if done % 25 == 0 or done == total:
                elapsed = time.monotonic() - start
                eta = elapsed / done * (total - done)
                print(f"step {done}/{total}  {elapsed:.0f}s  eta {eta:.0f}s", flush=True)

        localizer.fit(images, masks, on_progress=progress)
        print(f"trained in {time.monotonic() - start:.0f}s", flush=True)
        localizer.save(args.out)
        del images, masks
        calibrate_and_save(localizer, splits["calibration"], args.out, args.seed, calibration_specs)
    # The same report and tables as `fakescope eval --task localize --perturb clean`.
    report = localization_report(
        localizer,
        splits["test"],
        [CLEAN],
        name=str(args.out),
        benchmark=str(args.benchmark),
        split="test",
        seed=args.seed,
    )
    report["params"] = localizer.get_params()
    args.report.parent.mkdir(parents=True, exist_ok=True)
    args.report.write_text(write_json(report))
    print_localization_tables(report, Console(width=200))
    print(f"report: {args.report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
