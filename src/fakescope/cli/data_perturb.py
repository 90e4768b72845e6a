"""``fakescope data perturb SPEC IN_DIR OUT_DIR``: a perturbed copy of a dataset.

Heavy imports (numpy, Pillow, scipy) stay inside the command so that ``fakescope --help`` stays
fast; the perturbations themselves live in :mod:`fakescope.data.perturb`.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import replace
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from fakescope.data.manifest import ManifestRow
    from fakescope.data.perturb import Chain, Perturbed

PERTURB_JSON = "perturb.json"
META_GROUP = "perturb"  # per-image records go to OUT_DIR/meta/perturb/<relative path>.json
# Folders copied unchanged rather than perturbed: masks and flow fields are ground truth, not
# images to degrade (and flow/ holds .npy, not images).
COPIED_DIRS = ("masks", "flow")
SKIPPED_DIRS = (*COPIED_DIRS, "meta")


def perturb_command(
    spec: Annotated[
        str,
        typer.Argument(
            help="Perturbation chain, e.g. 'jpeg:75,blur:1.0,resize:0.5' or 'jpeg:60-95'.",
            show_default=False,
        ),
    ],
    in_dir: Annotated[
        Path,
        typer.Argument(
            exists=True, file_okay=False, dir_okay=True, help="Dataset to read (not changed)."
        ),
    ],
    out_dir: Annotated[Path, typer.Argument(file_okay=False, help="New dataset folder to write.")],
    seed: Annotated[
        int, typer.Option(help="Base seed; each file's seed derives from it and its path.")
    ] = 0,
    max_pixels: Annotated[
        int, typer.Option(min=1, help="Refuse images with more pixels (decompression bombs).")
    ] = 100_000_000,
    progress: Annotated[bool, typer.Option(help="Show progress on stderr.")] = True,
) -> None:
    """Apply a seeded perturbation chain to every image of IN_DIR, mirrored into OUT_DIR.

    SPEC: steps separated by ',', arguments by ':'; a range 'low-high' is sampled uniformly per
    image. Names: jpeg:QUALITY[:444|422|420], webp:QUALITY, blur:SIGMA, noise:SIGMA (0-255
    units), resize:SCALE[:bicubic|lanczos|bilinear|box|hamming|nearest][:aa|noaa][:GAP],
    longside:SIZE, crop:SIZE[:random|center] (fraction <= 1 or pixels),
    rotate:DEGREES[:crop|expand|same], gamma:GAMMA,
    jitter:BRIGHTNESS:CONTRAST:SATURATION:HUE, grayscale,
    social:facebook|instagram|twitter|whatsapp (approximate upload pipelines).
    Examples: 'jpeg:60-95', 'noise:2', 'resize:0.5:noaa', 'crop:0.8:center,jpeg:75'.

    Each file gets its own seed from (--seed, its path relative to IN_DIR), so results do not
    depend on which other files are processed. Images are written as PNG, except that a chain
    ending in jpeg/webp writes the codec's exact bytes (.jpg/.webp). Labels and groups are kept:
    real and fake images are perturbed alike. masks/ and flow/ are copied unchanged, manifest.csv
    rows are rewritten when IN_DIR has one, each image's applied parameters go to
    meta/perturb/<path>.json and the run's settings to perturb.json. A bad file is reported and
    skipped; the run goes on.
    """
    from rich.console import Console

    from fakescope.data.perturb import parse_spec

    console = Console(stderr=True)
    try:
        chain = parse_spec(spec)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="SPEC") from exc
    in_root, out_root = in_dir.resolve(), out_dir.resolve()
    if out_root == in_root or out_root.is_relative_to(in_root):
        raise typer.BadParameter("must not be IN_DIR or inside it", param_hint="OUT_DIR")
    if (out_root / PERTURB_JSON).exists() or (out_root / "manifest.csv").exists():
        raise typer.BadParameter(
            f"{out_dir} already holds a dataset; choose a new folder", param_hint="OUT_DIR"
        )
    _Run(chain, spec, seed, in_dir, out_root, max_pixels, console).run(progress)


class _Run:
    """One perturbation run: walks, perturbs, writes, counts."""

    def __init__(
        self,
        chain: Chain,
        spec: str,
        seed: int,
        in_dir: Path,
        out_root: Path,
        max_pixels: int,
        console: Console,
    ) -> None:
        from fakescope.data.manifest import read_manifest

        self.chain, self.spec, self.seed = chain, spec, seed
        self.in_dir = in_dir  # as given: perturb.json should not record this machine's paths
        self.in_root, self.out_root = in_dir.resolve(), out_root
        self.max_pixels = max_pixels
        self.console = console
        try:
            rows = read_manifest(self.in_root)
        except (KeyError, ValueError, TypeError) as exc:
            raise typer.BadParameter(
                f"cannot read {in_dir / 'manifest.csv'}: {exc}", param_hint="IN_DIR"
            ) from exc
        self.has_manifest = (self.in_root / "manifest.csv").is_file()
        self.rows_by_path = {row.path: row for row in rows}
        self.new_rows: list[ManifestRow] = []
        self.written: set[str] = set()
        self.n_ok = 0
        self.n_bad = 0
        self.n_unlisted = 0

    def run(self, progress: bool) -> None:
        from fakescope.cli.common import progress_bar
        from fakescope.data.manifest import append_manifest
        from fakescope.io.discover import iter_input_files

        # Listed up front (paths only) so that the bar knows its total.
        entries = [
            entry
            for entry in iter_input_files([str(self.in_root)])
            if self._relative(entry.path).split("/", 1)[0] not in SKIPPED_DIRS
        ]
        if not entries:
            self.console.print(f"[red]error:[/red] no images found in {self.in_root}")
            raise typer.Exit(1)
        self.out_root.mkdir(parents=True, exist_ok=True)
        enabled = progress and self.console.is_terminal
        with progress_bar(enabled, self.console) as bar:
            task = bar.add_task("perturbing", total=len(entries))
            for entry in entries:
                if entry.error is not None:
                    self._warn(self._relative(entry.path), str(entry.error.message))
                else:
                    self._one(entry.path)
                bar.advance(task)
        copied = self._copy_ground_truth()
        if self.new_rows:
            append_manifest(self.out_root, self.new_rows)
        self._write_summary(copied)
        self._report(copied)

    def _relative(self, path: str) -> str:
        return Path(os.path.relpath(path, self.in_root)).as_posix()

    def _warn(self, relative: str, message: str) -> None:
        from rich.markup import escape

        self.n_bad += 1
        self.console.print(
            f"[yellow]warning:[/yellow] {escape(relative)}: {escape(message)}", soft_wrap=True
        )

    def _one(self, path: str) -> None:
        from fakescope.data.perturb import derive_seed
        from fakescope.errors import InputError
        from fakescope.io.image import load_image

        relative = self._relative(path)
        try:
            pixels = load_image(path, max_pixels=self.max_pixels).pixels
            file_seed = derive_seed(self.seed, relative)
            result = self.chain(pixels, file_seed)
            self._write(relative, file_seed, result)
        except InputError as exc:
            self._warn(relative, exc.message)
        except Exception as exc:  # one bad file never aborts the run; the cause is reported
            self._warn(relative, f"{type(exc).__name__}: {exc}")

    def _write(self, relative: str, file_seed: int, result: Perturbed) -> None:
        from PIL import Image

        from fakescope.data.manifest import file_sha256

        stem = PurePosixPath(relative).with_suffix("").as_posix()
        if result.encoded is not None:
            # The codec's own bytes: re-encoding them (or saving the decoded pixels as PNG)
            # would undo or double the compression.
            target_rel, file_format = stem + result.encoded.extension, result.encoded.format
        else:
            target_rel, file_format = stem + ".png", "PNG"
        if target_rel in self.written:
            raise ValueError(f"another input already wrote {target_rel}")
        target = self.out_root / target_rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if result.encoded is not None:
            target.write_bytes(result.encoded.data)
        else:
            Image.fromarray(result.pixels).save(target, format="PNG")
        self.written.add(target_rel)
        row = self.rows_by_path.get(relative)
        meta_rel = f"meta/{META_GROUP}/{stem}.json"
        meta = {
            "path": target_rel,
            "source_path": relative,
            "spec": self.spec,
            "seed": self.seed,
            "file_seed": file_seed,
            "applied": result.record,
            "input_params": self._input_params(row),
        }
        meta_path = self.out_root / meta_rel
        meta_path.parent.mkdir(parents=True, exist_ok=True)
        meta_path.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
        self.n_ok += 1
        if row is None:
            if self.has_manifest:
                self.n_unlisted += 1
            return
        height, width = result.pixels.shape[:2]
        self.new_rows.append(
            replace(
                row,
                path=target_rel,
                sha256=file_sha256(target),
                width=width,
                height=height,
                format=file_format,
                params=meta_rel,
            )
        )

    def _input_params(self, row: ManifestRow | None) -> Any:
        """The input's own parameter JSON, embedded so the chain of processing stays readable
        (IN_DIR's meta/ is not copied: its perturb records would clash with the new ones)."""
        if row is None or not row.params:
            return None
        try:
            return json.loads((self.in_root / row.params).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {"unreadable": row.params}

    def _copy_ground_truth(self) -> list[str]:
        copied = []
        for name in COPIED_DIRS:
            source = self.in_root / name
            if source.is_dir():
                shutil.copytree(source, self.out_root / name, dirs_exist_ok=True)
                copied.append(name)
        return copied

    def _write_summary(self, copied: list[str]) -> None:
        from fakescope import __version__

        summary = {
            "command": "fakescope data perturb",
            "fakescope_version": __version__,
            "spec": self.spec,
            "normalized_spec": self.chain.spec(),
            "chain": self.chain.config(),
            "seed": self.seed,
            "file_seed": "fakescope.data.perturb.derive_seed(seed, path relative to the input)",
            "input": str(self.in_dir),
            "files": self.n_ok,
            "bad_files": self.n_bad,
            "copied": copied,
            "geometry_changed": self.chain.geometric,
            "meta": f"meta/{META_GROUP}/<path without extension>.json",
        }
        path = self.out_root / PERTURB_JSON
        path.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")

    def _report(self, copied: list[str]) -> None:
        from rich.markup import escape

        if copied and self.chain.geometric:
            self.console.print(
                f"[yellow]warning:[/yellow] {', '.join(copied)} copied unchanged, but the chain "
                "moves pixels (resize/crop/rotate/social): they no longer align with the images",
                soft_wrap=True,
            )
        if self.n_unlisted:
            self.console.print(
                f"[yellow]warning:[/yellow] {self.n_unlisted} images are not in the input's "
                "manifest.csv and got no row",
                soft_wrap=True,
            )
        bad = f", {self.n_bad} bad files skipped" if self.n_bad else ""
        self.console.print(
            f"perturbed {self.n_ok} images into {escape(str(self.out_root))}{bad}", soft_wrap=True
        )
