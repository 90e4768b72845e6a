#!/usr/bin/env python
"""Rebuild the bundled ``spectral-default`` model from scratch, offline, reproducibly.

Steps (everything derived goes under ``--work-dir``, git-ignored by default):

1. Gather real photographs (Debian wallpaper packages + sample images of installed Python
   packages; curated allowlist, see :mod:`fakescope.data.sources`) into ``--sources-dir``.
2. Give every scene one role, seeded and stratified by source:
   ``heldout`` (never trained on; clean test), ``generator`` (trains the fake generator) and
   ``fakes`` (source of the fake tiles). Reals of the training set come from ``generator`` and
   ``fakes`` photos; fakes only from ``fakes`` photos, which the generator never saw.
3. Cut 256x256 tiles without resampling (offsets multiples of 16: luma 8x8 blocks and 4:2:0
   chroma blocks stay aligned), at most ``--max-tiles-per-photo`` per photo.
4. Train the transposed-convolution autoencoder (cached by fingerprint in ``WORK/generator``).
5. Fakes: autoencoder output, JPEG round-tripped at the source photo's estimated quality and
   subsampling when it was a JPEG, saved as PNG like the reals.
6. ``fakescope train spectral`` on ``WORK/dataset``; ``fakescope eval`` on the training set
   (optimistic: it includes the training part), on held-out photos (``WORK/heldout``: same
   generator, unseen photos) and, when ``../shared/data/sd-v1`` exists, on Stable Diffusion v1
   images against held-out real tiles (``WORK/ood``; a test family only, never trained on).
7. ``metrics.json`` and ``DATA.md`` (the training data card) go next to the model.

Usage::

    python scripts/build_default_model.py                 # full build
    python scripts/build_default_model.py --data-only     # stop after writing the datasets
    python scripts/build_default_model.py --write-examples  # also refresh examples/
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import io
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from fakescope.data.generators.fakes import match_jpeg_history, write_fakes
from fakescope.data.sources import PhotoRecord, default_cache_dir, gather_real_photos
from fakescope.data.tiles import (
    TILE_ALIGN,
    TILE_MIN_STD,
    TILE_SIZE,
    TileRecord,
    tile_photo,
    write_tile_index,
)

REPO = Path(__file__).resolve().parents[1]
MODEL_NAME = "spectral-default"
GENERATOR_GROUP = "ae-transposed"
ROLES = ("heldout", "generator", "fakes")
# Examples bundled in examples/: public-domain or CC0 photos only.
EXAMPLE_REALS = (
    "skimage-astronaut",
    "skimage-coffee",
    "skimage-chelsea",
    "matplotlib-grace-hopper",
)
# This model's own fake of chelsea is a test fixture (tests/data/): the bundled examples' fakes
# come from the benchmark and show the default model, which is another one.
EXAMPLE_FAKES = ("skimage-chelsea",)
FIXTURES = REPO / "tests" / "data"
EXAMPLE_BROKEN = "matplotlib-grace-hopper"


def log(message: str) -> None:
    print(f"[build] {message}", file=sys.stderr, flush=True)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work-dir", type=Path, default=REPO / "work-data" / "default-model")
    parser.add_argument(
        "--sources-dir",
        type=Path,
        default=None,
        help="cache of real photos (default: ~/.cache/fakescope/real-sources)",
    )
    parser.add_argument(
        "--model-out", type=Path, default=REPO / "src/fakescope/models" / MODEL_NAME
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--max-tiles-per-photo", type=int, default=24)
    parser.add_argument("--heldout-fraction", type=float, default=0.2)
    parser.add_argument("--generator-fraction", type=float, default=0.3)
    parser.add_argument("--generator-steps", type=int, default=3000)
    parser.add_argument("--sd-dir", type=Path, default=REPO.parent / "shared" / "data" / "sd-v1")
    parser.add_argument(
        "--data-only", action="store_true", help="build the datasets, skip fakescope train/eval"
    )
    parser.add_argument(
        "--write-examples", action="store_true", help=f"rewrite the images in {REPO / 'examples'}"
    )
    return parser.parse_args(argv)


def assign_roles(
    records: Sequence[PhotoRecord], seed: int, heldout: float, generator: float
) -> dict[str, str]:
    """Scene -> role, seeded and stratified by source family so each role mixes sources."""
    strata: dict[str, list[str]] = defaultdict(list)
    for record in records:
        family = "pypi" if record.source.startswith("pypi:") else record.photo_id.split("-")[0]
        if record.scene not in strata[family]:
            strata[family].append(record.scene)
    roles: dict[str, str] = {}
    rng = np.random.default_rng(seed)
    for family in sorted(strata):
        scenes = sorted(strata[family])
        order = [scenes[i] for i in rng.permutation(len(scenes))]
        n_heldout = round(len(order) * heldout)
        ends = (("heldout", n_heldout), ("generator", n_heldout + round(len(order) * generator)))
        for index, scene in enumerate(order):
            roles[scene] = next((role for role, end in ends if index < end), "fakes")
    return roles


def link_or_copy(source: Path, target: Path) -> None:
    """Hard link when possible (datasets share tiles), else copy."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        target.unlink()
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def fakescope_command() -> list[str]:
    """The ``fakescope`` CLI of this interpreter's environment (its script, else the module)."""
    script = Path(sys.executable).parent / "fakescope"
    if script.is_file():
        return [str(script)]
    found = shutil.which("fakescope")
    if found:
        return [found]
    return [
        sys.executable,
        "-c",
        "import sys; sys.argv[0] = 'fakescope'; from fakescope.cli.main import run; run()",
    ]


def run_cli(arguments: list[str]) -> None:
    # Paths inside the repo are passed relative to it, so no absolute path lands in model files.
    arguments = [_repo_relative(argument) for argument in arguments]
    command = [*fakescope_command(), *arguments]
    log("$ fakescope " + " ".join(arguments))
    result = subprocess.run(command, cwd=REPO, check=False)
    if result.returncode != 0:
        raise SystemExit(f"fakescope {arguments[0]} failed with exit code {result.returncode}")


def _repo_relative(argument: str) -> str:
    path = Path(argument)
    if path.is_absolute() and path.is_relative_to(REPO):
        return str(path.relative_to(REPO))
    return argument


def evaluate(model_dir: Path, data_dir: Path, out_json: Path) -> dict[str, Any]:
    run_cli(
        [
            "eval",
            "--model",
            str(model_dir),
            "--data",
            str(data_dir),
            "--format",
            "json",
            "--out",
            str(out_json),
            "--no-progress",
        ]
    )
    return json.loads(out_json.read_text())


def cut_all_tiles(
    records: Sequence[PhotoRecord], sources_dir: Path, tiles_dir: Path, args: argparse.Namespace
) -> list[TileRecord]:
    tiles: list[TileRecord] = []
    for record in records:
        tiles += tile_photo(
            sources_dir / record.path,
            record.photo_id,
            tiles_dir,
            size=TILE_SIZE,
            max_tiles=args.max_tiles_per_photo,
            seed=args.seed,
            align=TILE_ALIGN,
            min_std=TILE_MIN_STD,
        )
    write_tile_index(tiles, tiles_dir.parent / "tiles.csv")
    return tiles


def train_generator(
    tiles: Sequence[TileRecord],
    photos: dict[str, PhotoRecord],
    work: Path,
    args: argparse.Namespace,
) -> tuple[Any, dict[str, Any]]:
    # torch is imported here so --help and import errors elsewhere stay cheap and clear.
    from fakescope.data.generators.autoencoder import (
        AutoencoderConfig,
        TrainingOptions,
        train_or_load,
    )

    pixels = np.stack([np.asarray(Image.open(t.path).convert("RGB")) for t in tiles])
    keys = [f"{t.name}:{photos[t.photo_id].sha256}" for t in tiles]
    config = AutoencoderConfig(upsampling="transposed", seed=args.seed)
    options = TrainingOptions(steps=args.generator_steps)
    log(f"generator: {len(tiles)} training tiles, {options.steps} steps (cached if unchanged)")
    model, document = train_or_load(
        work / "generator" / GENERATOR_GROUP,
        pixels,
        keys,
        config,
        options,
        progress=lambda step, loss: log(f"  step {step}: L1 {loss:.4f}"),
    )
    log(
        f"generator: {document['log']['seconds']:.0f} s of training, "
        f"final L1 {document['log']['final_loss']:.4f}"
    )
    return model, document


def write_examples(
    tiles: Sequence[TileRecord], generate: Callable[[np.ndarray], np.ndarray], examples_dir: Path
) -> list[Path]:
    """Small demo images (real tiles, one truncated JPEG) and this generator's test fakes."""
    first = {}
    for tile in tiles:
        first.setdefault(tile.photo_id, tile)
    written = []
    for photo_id in EXAMPLE_REALS:
        target = examples_dir / f"real-{photo_id}.png"
        shutil.copyfile(first[photo_id].path, target)
        written.append(target)
    for photo_id in EXAMPLE_FAKES:
        tile = first[photo_id]
        fake = generate(np.asarray(Image.open(tile.path).convert("RGB"))[None])[0]
        target = FIXTURES / f"fake-{GENERATOR_GROUP}-{photo_id}.png"
        Image.fromarray(match_jpeg_history(fake, tile)).save(target, format="PNG")
        written.append(target)
    buffer = io.BytesIO()
    Image.open(first[EXAMPLE_BROKEN].path).convert("RGB").save(buffer, format="JPEG", quality=90)
    data = buffer.getvalue()
    target = examples_dir / "broken-truncated.jpg"
    target.write_bytes(data[: len(data) // 2])  # cut mid-scan: header fine, pixel data missing
    written.append(target)
    return written


def repo_relative(value: Any) -> Any:
    """Paths inside the repository written relative to it, so metrics.json is machine-neutral."""
    if isinstance(value, dict):
        return {key: repo_relative(item) for key, item in value.items()}
    if isinstance(value, list):
        return [repo_relative(item) for item in value]
    if isinstance(value, str) and value.startswith(f"{REPO}{os.sep}"):
        return Path(value).relative_to(REPO).as_posix()
    return value


def data_card(
    photos: Sequence[PhotoRecord],
    roles: dict[str, str],
    tile_counts: Counter[str],
    summary: dict[str, Any],
) -> str:
    lines = [
        f"# Training data of `{MODEL_NAME}`",
        "",
        "Rebuilt by `python scripts/build_default_model.py` (offline; see its docstring).",
        "",
        "- **Real**: 256x256 crops (no resampling) of the photographs below, role `generator`"
        " or `fakes`.",
        f"- **Fake** (`{GENERATOR_GROUP}`): the same crops of `fakes` photos reconstructed by a"
        " small autoencoder with transposed-convolution upsampling"
        " (`fakescope.data.generators.autoencoder`), trained only on `generator` photos, then"
        " JPEG round-tripped at the source photo's estimated quality and saved as PNG.",
        "- **Held out**: `heldout` photos are used for testing only (`metrics.json`).",
        "",
        f"Counts: {json.dumps(summary['counts'])}",
        "",
        "ROC-AUC: "
        + ", ".join(
            f"{name} {report['overall']['roc_auc']:.3f}"
            for name, report in summary["evaluation"].items()
            if isinstance(report, dict) and report.get("overall", {}).get("roc_auc") is not None
        )
        + " (details and caveats in `metrics.json`).",
        "",
        "| photo_id | role | tiles | source | licence | author | format | JPEG q |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for p in photos:
        lines.append(
            f"| {p.photo_id} | {roles[p.scene]} | {tile_counts[p.photo_id]} | "
            f"{p.source} {p.source_version} | {p.licence} | {p.author} | {p.format} | "
            f"{p.jpeg_quality if p.jpeg_quality is not None else '-'} |"
        )
    lines += [
        "",
        "Photographs were chosen from an allowlist made by looking at every image in the"
        " packages; renders, vector art and paintings are excluded"
        " (rule: `fakescope.data.sources` docstring).",
        "",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    start = time.perf_counter()
    work: Path = args.work_dir.resolve()
    sources_dir = (args.sources_dir or default_cache_dir()).expanduser().resolve()
    # Derived folders are rebuilt every run; the generator cache and sources are kept.
    for name in ("tiles", "dataset", "heldout", "ood", "eval"):
        shutil.rmtree(work / name, ignore_errors=True)

    log(f"gathering real photographs into {sources_dir}")
    photos = gather_real_photos(sources_dir)
    by_id = {p.photo_id: p for p in photos}
    log(f"{len(photos)} photographs: {dict(Counter(p.source for p in photos))}")
    roles = assign_roles(photos, args.seed, args.heldout_fraction, args.generator_fraction)

    tiles = cut_all_tiles(photos, sources_dir, work / "tiles" / "all", args)
    tile_counts = Counter(t.photo_id for t in tiles)
    by_role: dict[str, list[TileRecord]] = {role: [] for role in ROLES}
    for tile in tiles:
        by_role[roles[by_id[tile.photo_id].scene]].append(tile)
    log("tiles per role: " + ", ".join(f"{r} {len(t)}" for r, t in by_role.items()))

    model, generator_doc = train_generator(by_role["generator"], by_id, work, args)
    from fakescope.data.generators.autoencoder import reconstruct

    generate = functools.partial(reconstruct, model)

    dataset = work / "dataset"
    for tile in by_role["generator"] + by_role["fakes"]:
        link_or_copy(Path(tile.path), dataset / "real" / f"{tile.name}.png")
    write_fakes(generate, by_role["fakes"], dataset / "fake" / GENERATOR_GROUP)
    heldout = work / "heldout"
    for tile in by_role["heldout"]:
        link_or_copy(Path(tile.path), heldout / "real" / f"{tile.name}.png")
    write_fakes(generate, by_role["heldout"], heldout / "fake" / GENERATOR_GROUP)
    sd_files = sorted(args.sd_dir.glob("*.png")) if args.sd_dir.is_dir() else []
    if sd_files:
        ood = work / "ood"
        for tile in by_role["heldout"]:
            link_or_copy(Path(tile.path), ood / "real" / f"{tile.name}.png")
        (ood / "fake" / "sd-v1").mkdir(parents=True, exist_ok=True)
        for file in sd_files:
            shutil.copyfile(file, ood / "fake" / "sd-v1" / file.name)
    counts = {
        "photos": dict(Counter(roles[p.scene] for p in photos)),
        "tiles": {role: len(t) for role, t in by_role.items()},
        "dataset": {
            "real": len(by_role["generator"]) + len(by_role["fakes"]),
            GENERATOR_GROUP: len(by_role["fakes"]),
        },
        "heldout": {"real": len(by_role["heldout"]), GENERATOR_GROUP: len(by_role["heldout"])},
        "ood": {"real": len(by_role["heldout"]) if sd_files else 0, "sd-v1": len(sd_files)},
    }
    log(f"datasets written under {work}: {json.dumps(counts)}")

    if args.write_examples:
        for path in write_examples(tiles, generate, REPO / "examples"):
            log(f"example: {path.relative_to(REPO)} ({path.stat().st_size} bytes)")

    if args.data_only:
        log(f"--data-only: stopping before training ({time.perf_counter() - start:.0f} s)")
        return 0

    model_dir: Path = args.model_out.resolve()
    run_cli(
        [
            "train",
            "spectral",
            "--data",
            str(dataset),
            "--out",
            str(model_dir),
            "--seed",
            str(args.seed),
            "--no-progress",
        ]
    )
    evaluations: dict[str, Any] = {}
    eval_dir = work / "eval"
    eval_dir.mkdir(parents=True, exist_ok=True)
    evaluations["dataset"] = evaluate(model_dir, dataset, eval_dir / "dataset.json")
    evaluations["heldout_photos"] = evaluate(model_dir, heldout, eval_dir / "heldout.json")
    if sd_files:
        evaluations["ood_sd_v1"] = evaluate(model_dir, work / "ood", eval_dir / "ood-sd-v1.json")
    else:
        log(f"{args.sd_dir} not found: skipping the out-of-distribution evaluation")

    summary: dict[str, Any] = {
        "model": MODEL_NAME,
        "built_by": "scripts/build_default_model.py",
        "settings": {
            "seed": args.seed,
            "max_tiles_per_photo": args.max_tiles_per_photo,
            "tile_size": TILE_SIZE,
            "tile_align": TILE_ALIGN,
            "tile_min_std": TILE_MIN_STD,
            "heldout_fraction": args.heldout_fraction,
            "generator_fraction": args.generator_fraction,
        },
        "generator": {
            "group": GENERATOR_GROUP,
            "config": generator_doc["config"],
            "training": generator_doc["training"],
            "seconds": generator_doc["log"]["seconds"],
            "final_l1": generator_doc["log"]["final_loss"],
            "fingerprint": generator_doc["fingerprint"],
            "torch_version": generator_doc["torch_version"],
        },
        "counts": counts,
        "photos": [
            {
                **{k: v for k, v in asdict(p).items() if k != "path"},
                "role": roles[p.scene],
                "tiles": tile_counts[p.photo_id],
            }
            for p in photos
        ],
        "evaluation": {
            "note": "'dataset' includes the training part (optimistic); 'heldout_photos' uses "
            "photos never trained on; 'ood_sd_v1' is Stable Diffusion v1, a family never "
            "trained on, against held-out real tiles",
            **evaluations,
        },
        "environment": {"python": platform.python_version(), "numpy": np.__version__},
        "dataset_sha256": hashlib.sha256(
            "\n".join(sorted(f"{t.name}:{by_id[t.photo_id].sha256}" for t in tiles)).encode()
        ).hexdigest(),
    }
    (model_dir / "metrics.json").write_text(
        json.dumps(repo_relative(summary), indent=2, default=str) + "\n"
    )
    (model_dir / "DATA.md").write_text(data_card(photos, roles, tile_counts, summary))
    for name, report in evaluations.items():
        overall = report.get("overall", {})
        log(
            f"{name}: AP {overall.get('ap')}, ROC-AUC {overall.get('roc_auc')}, "
            f"acc@thr {overall.get('accuracy')}"
        )
    log(f"done in {time.perf_counter() - start:.0f} s: {model_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
