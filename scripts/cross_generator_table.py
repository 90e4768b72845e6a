#!/usr/bin/env python
"""Cross-generator table in the style of Wang et al. (CVPR 2020): train on one family, test on all.

A thin wrapper around :mod:`fakescope.evaluation.cross_generator`, which holds the protocol
(also behind ``fakescope eval --train-on``): photo-grouped test reals (every ``heldout`` photo
plus 30 % of the ``source`` photos of a benchmark's ``splits.csv``), each family's test fakes
from those photos, DCGAN against its size-matched reals, the processed-real FPR at the threshold
giving 5 % FPR on the test reals, and the genuine Stable Diffusion v1 samples of
``../shared/data/sd-v1`` (centre crops of the tile size, never resampled) as an unseen column.
This script runs several detectors in one go and writes the JSON and Markdown tables of
docs/cross-generator.md.

Usage::

    python scripts/cross_generator_table.py work-data/benchmark --detectors spectral npr \\
        -p npr.epochs=2 --out work-data/cross-generator.json --markdown docs/cross-generator.md
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fakescope.data.layout import discover_dataset
from fakescope.evaluation.cross_generator import (
    default_train_families,
    run_cross_generator,
    to_markdown,
)
from fakescope.evaluation.eval_set import build_eval_set, split_dataset
from fakescope.evaluation.suite import add_external_fakes

NO_CAP = 10**9


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


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("benchmark", type=Path)
    parser.add_argument("--detectors", nargs="+", default=["spectral"])
    parser.add_argument("-p", "--param", action="append", default=[], help="DETECTOR.KEY=VALUE")
    parser.add_argument("--families", nargs="+", default=None, help="default: all generator ones")
    parser.add_argument("--max-train-per-class", type=int, default=800)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sd", type=Path, default=Path("../shared/data/sd-v1"))
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--markdown", type=Path, default=None)
    args = parser.parse_args(argv)
    params = parse_params(args.param)

    items = discover_dataset(args.benchmark)
    split = split_dataset(items, args.benchmark, args.seed)
    families = args.families or default_train_families(split.train)
    test_set = build_eval_set(args.benchmark, split.test, NO_CAP, args.seed, min_side=4)
    unseen = []
    if args.sd.is_dir():
        test_set, name = add_external_fakes(test_set, args.sd, min_side=4)
        unseen.append(name)
    print(f"{split.description}; {len(test_set.items)} test images", file=sys.stderr)

    results: dict[str, Any] = {"benchmark": args.benchmark.name, "seed": args.seed, "detectors": {}}
    for name in args.detectors:
        results["detectors"][name] = run_cross_generator(
            split,
            test_set,
            families,
            name,
            params.get(name, {}),
            max_train_per_class=args.max_train_per_class,
            seed=args.seed,
            unseen_columns=unseen,
            log=lambda message: print(message, file=sys.stderr),
        )
    n_test_real = sum(1 for item in test_set.items if item.label == 0)
    header = (
        f"Test images: {len(test_set.items)} ({n_test_real} real; {split.description}). "
        "Cells: AP / TPR at 5 % FPR.\n\n"
    )
    text = header + "\n".join(to_markdown(m) for m in results["detectors"].values())
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2) + "\n")
    if args.markdown:
        args.markdown.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
