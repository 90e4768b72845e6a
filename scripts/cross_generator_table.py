#!/usr/bin/env python
"""Cross-generator table in the style of Wang et al. (CVPR 2020): train on one family, test on all.

Reads a benchmark built by ``fakescope data benchmark`` (docs/dataset-layout.md) and, for each
detector and each *training* family, trains on real tiles + that family's fakes and tests on
every family, reporting AP and TPR at 5 % FPR per cell. Also reported per training family:

- ``sd-v1``: the genuine Stable Diffusion v1 samples in ``../shared/data/sd-v1`` (centre-cropped
  to the tile size, never resampled) against the test reals: a family no model here trains on;
- ``processed-real FPR``: the share of processed-real controls (resized, recompressed, blurred,
  screenshots; label real) above the threshold that gives 5 % FPR on the test reals.

Photos, not tiles, are split: test reals are the ``heldout`` photos (never faked, never used to
train a generator) plus a grouped share of the ``source`` photos; the test fakes of every family
come from those same held-out source photos, so no photo is on both sides. DCGAN samples have no
source photo; they are split at random and tested against the size-matched reals of
``dcgan/0_real/`` from test photos.

Usage::

    python scripts/cross_generator_table.py work-data/benchmark --detectors spectral npr \\
        -p npr.epochs=2 --out work-data/cross-generator.json --markdown docs/cross-generator.md
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fakescope.data.benchmark_splits import (
    FORGERIES,
    UNCONDITIONAL,
    centre_crop,
    decode,
    images_in,
    photo_of,
    read_roles,
    split_photos,
)
from fakescope.detectors import create
from fakescope.evaluation.metrics import binary_metrics


def parse_params(tokens: Sequence[str]) -> dict[str, dict[str, Any]]:
    """``detector.key=value`` (JSON values) -> {detector: {key: value}}."""
    params: dict[str, dict[str, Any]] = {}
    for token in tokens:
        key, _, raw = token.partition("=")
        detector, _, name = key.partition(".")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        params.setdefault(detector, {})[name] = value
    return params


def cell(labels: np.ndarray, scores: np.ndarray) -> dict[str, float | None]:
    metrics = binary_metrics(labels, scores)
    return {"ap": metrics["ap"], "tpr_at_fpr_5": metrics.get("tpr_at_fpr_5")}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("benchmark", type=Path)
    parser.add_argument("--detectors", nargs="+", default=["spectral"])
    parser.add_argument("-p", "--param", action="append", default=[], help="DETECTOR.KEY=VALUE")
    parser.add_argument("--families", nargs="+", default=None, help="default: all generator ones")
    parser.add_argument("--test-share", type=float, default=0.3)
    parser.add_argument("--max-train-per-class", type=int, default=800)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sd", type=Path, default=Path("../shared/data/sd-v1"))
    parser.add_argument("--tile", type=int, default=256)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--markdown", type=Path, default=None)
    args = parser.parse_args(argv)
    root: Path = args.benchmark
    roles = read_roles(root)
    params = parse_params(args.param)

    source_photos = [p for p, role in roles.items() if role == "source"]
    test_source = split_photos(source_photos, args.test_share, args.seed)
    is_test = {p: role == "heldout" or p in test_source for p, role in roles.items()}

    real_paths = [
        p for role in ("generator", "source", "heldout") for p in images_in(root / "real" / role)
    ]
    train_real = [p for p in real_paths if not is_test.get(photo_of(p), False)]
    test_real = [p for p in real_paths if is_test.get(photo_of(p), False)]
    processed = [p for p in images_in(root / "real" / "processed-real") if is_test.get(photo_of(p))]
    fake_root = root / "fake"
    families = args.families or sorted(
        d.name for d in fake_root.iterdir() if d.is_dir() and d.name not in FORGERIES
    )
    if (root / UNCONDITIONAL / "1_fake").is_dir() and UNCONDITIONAL not in families:
        families.append(UNCONDITIONAL)

    rng = np.random.default_rng(args.seed)
    fakes: dict[str, tuple[list[Path], list[Path]]] = {}
    for family in families:
        if family == UNCONDITIONAL:
            paths = images_in(root / family / "1_fake")
            chosen = set(rng.permutation(len(paths))[: round(args.test_share * len(paths))])
            fakes[family] = (
                [p for i, p in enumerate(paths) if i not in chosen],
                [p for i, p in enumerate(paths) if i in chosen],
            )
        else:
            paths = images_in(fake_root / family)
            fakes[family] = (
                [p for p in paths if not is_test.get(photo_of(p), False)],
                [p for p in paths if is_test.get(photo_of(p), False)],
            )
    dcgan_reals = images_in(root / UNCONDITIONAL / "0_real")
    dcgan_train_real = [p for p in dcgan_reals if not is_test.get(photo_of(p), False)]
    dcgan_test_real = [p for p in dcgan_reals if is_test.get(photo_of(p), False)]

    def capped(paths: list[Path]) -> list[Path]:
        if len(paths) <= args.max_train_per_class:
            return paths
        keep = np.random.default_rng(args.seed).permutation(len(paths))[: args.max_train_per_class]
        return [paths[i] for i in sorted(keep)]

    print(f"test reals {len(test_real)}, train reals {len(train_real)}", file=sys.stderr)
    test_real_px = decode(test_real)
    processed_px = decode(processed)
    dcgan_test_real_px = decode(dcgan_test_real)
    test_fake_px = {family: decode(test) for family, (_, test) in fakes.items()}
    sd_px = [centre_crop(px, args.tile) for px in decode(images_in(args.sd))]

    results: dict[str, Any] = {
        "benchmark": root.name,
        "seed": args.seed,
        "n_test_real": len(test_real_px),
        "n_test_fake": {f: len(v) for f, v in test_fake_px.items()},
        "n_sd": len(sd_px),
        "n_processed_real": len(processed_px),
        "detectors": {},
    }
    for name in args.detectors:
        rows: dict[str, Any] = {}
        for train_family in families:
            started = time.perf_counter()
            train_fakes, _ = fakes[train_family]
            reals = dcgan_train_real if train_family == UNCONDITIONAL else train_real
            real_px = decode(capped(reals))
            fake_px = decode(capped(train_fakes))
            detector = create(name, **params.get(name, {}))
            detector.fit(real_px + fake_px, [0] * len(real_px) + [1] * len(fake_px))
            fit_seconds = time.perf_counter() - started
            real_scores = detector.predict_proba(test_real_px)
            threshold = float(np.quantile(real_scores, 0.95))
            row: dict[str, Any] = {}
            for family, px in test_fake_px.items():
                negatives = (
                    detector.predict_proba(dcgan_test_real_px)
                    if family == UNCONDITIONAL
                    else real_scores
                )
                scores = np.concatenate([negatives, detector.predict_proba(px)])
                labels = np.r_[np.zeros(len(negatives)), np.ones(len(px))]
                row[family] = cell(labels, scores)
            if sd_px:
                scores = np.concatenate([real_scores, detector.predict_proba(sd_px)])
                row["sd-v1"] = cell(np.r_[np.zeros(len(real_scores)), np.ones(len(sd_px))], scores)
            if processed_px:
                processed_scores = detector.predict_proba(processed_px)
                row["processed_real_fpr"] = float(np.mean(processed_scores > threshold))
            row["fit_seconds"] = round(fit_seconds, 1)
            rows[train_family] = row
            print(f"{name} trained on {train_family}: {fit_seconds:.0f} s", file=sys.stderr)
        results["detectors"][name] = rows

    text = json.dumps(results, indent=2)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    if args.markdown:
        args.markdown.write_text(to_markdown(results, families))
    print(to_markdown(results, families))
    return 0


def to_markdown(results: dict[str, Any], families: list[str]) -> str:
    columns = [*families, "sd-v1"]
    lines = [
        f"Test reals: {results['n_test_real']} held-out tiles; SD v1: {results['n_sd']} samples; "
        f"processed reals: {results['n_processed_real']}. Cells: AP / TPR at 5 % FPR.",
        "",
    ]
    for name, rows in results["detectors"].items():
        lines += [
            f"### {name}",
            "",
            "| trained on | " + " | ".join(columns) + " | processed-real FPR |",
            "|---|" + "---|" * (len(columns) + 1),
        ]
        for train_family, row in rows.items():
            cells = []
            for column in columns:
                value = row.get(column)
                if not value or value["ap"] is None:
                    cells.append("-")
                    continue
                text = f"{value['ap']:.2f} / {value['tpr_at_fpr_5']:.2f}"
                cells.append(f"**{text}**" if column == train_family else text)
            fpr = row.get("processed_real_fpr")
            cells.append("-" if fpr is None else f"{fpr:.1%}")
            lines.append(f"| {train_family} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
