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
    import numpy as np
    from rich.console import Console

    from fakescope.data.manifest import ManifestRow
    from fakescope.data.perturb import Chain, Perturbed

PERTURB_JSON = "perturb.json"
META_GROUP = "perturb"  # per-image records go to OUT_DIR/meta/perturb/<relative path>.json
# Ground truth is never degraded like an image (a JPEG'd mask is no longer binary, flow/ holds
# .npy): a geometric chain moves it with its image's recorded params, any other chain leaves it
# aligned, so it is copied byte for byte.
MASK_DIR, FLOW_DIR = "masks", "flow"
GROUND_TRUTH_DIRS = (MASK_DIR, FLOW_DIR)
SKIPPED_DIRS = (*GROUND_TRUTH_DIRS, "meta")
_LISTED_LEFT_OUT = 5  # ground-truth files named in the warning; perturb.json lists them all


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
    real and fake images are perturbed alike. Masks and warp flows stay aligned: a chain with
    resize/longside/crop/rotate/social moves each image's masks/ and flow/ files with that
    image's own params (masks nearest-neighbour, so still 0/255; flow vectors rescaled and
    rotated); other chains copy them unchanged. manifest.csv rows are rewritten when IN_DIR has
    one, each image's applied parameters go to meta/perturb/<path>.json and the run's settings
    to perturb.json. A bad file is reported and skipped; the run goes on.
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
        # Ground-truth files written so far (relative paths): one file belongs to one image.
        self.ground_truth: set[str] = set()

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
        if self.chain.geometric:
            left_out = self._left_out_ground_truth()
        else:
            left_out = []
            self._copy_ground_truth()
        if self.new_rows:
            append_manifest(self.out_root, self.new_rows)
        self._write_summary(left_out)
        self._report(left_out)

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
            self._write(relative, file_seed, pixels.shape[:2], result)
        except InputError as exc:
            self._warn(relative, exc.message)
        except Exception as exc:  # one bad file never aborts the run; the cause is reported
            self._warn(relative, f"{type(exc).__name__}: {exc}")

    def _write(
        self, relative: str, file_seed: int, input_size: tuple[int, ...], result: Perturbed
    ) -> None:
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
        row = self.rows_by_path.get(relative)
        input_params = self._input_params(row)
        companions = self._companions(relative, row, input_params)
        # Transformed before anything is written: an image whose mask or flow cannot follow it
        # is skipped whole, rather than written with ground truth that no longer matches.
        moved = (
            self._moved_ground_truth(companions, input_size, result) if self.chain.geometric else {}
        )
        target = self.out_root / target_rel
        target.parent.mkdir(parents=True, exist_ok=True)
        if result.encoded is not None:
            target.write_bytes(result.encoded.data)
        else:
            Image.fromarray(result.pixels).save(target, format="PNG")
        self.written.add(target_rel)
        for companion, values in moved.items():
            self._save_ground_truth(companion, values)
        meta_rel = f"meta/{META_GROUP}/{stem}.json"
        meta = {
            "path": target_rel,
            "source_path": relative,
            "spec": self.spec,
            "seed": self.seed,
            "file_seed": file_seed,
            "applied": result.record,
            # Masks and flows of this image, at the same paths in OUT_DIR: moved with
            # "applied" when the chain is geometric, else copied as they were.
            "ground_truth": companions,
            "input_params": input_params,
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

    def _companions(self, relative: str, row: ManifestRow | None, input_params: Any) -> list[str]:
        """The masks and flows that belong to the image at ``relative`` (existing files only).

        From its manifest row (``mask``), its parameter JSON (``mask``, ``extra_masks`` and
        ``flow`` as ``data forge`` writes them; ``ground_truth`` from an earlier perturb run)
        and the layout's naming rule (``fake/<rest>`` -> ``masks/<rest>.png``,
        ``flow/<rest>.npy``, as ``data audit --debias`` reads them).
        """
        named: list[Any] = []
        if row is not None and row.mask:
            named.append(row.mask)
        if isinstance(input_params, dict):
            named += [input_params.get("mask"), input_params.get("flow")]
            extra = input_params.get("extra_masks")
            if isinstance(extra, dict):
                named += list(extra.values())
            earlier = input_params.get("ground_truth")
            if isinstance(earlier, list):
                named += earlier
        parts = PurePosixPath(relative).parts
        if len(parts) >= 3 and parts[0] == "fake":
            rest = PurePosixPath(*parts[1:]).with_suffix("").as_posix()
            named += [f"{MASK_DIR}/{rest}.png", f"{FLOW_DIR}/{rest}.npy"]
        found: list[str] = []
        for name in named:
            if not isinstance(name, str) or not name:
                continue
            path = PurePosixPath(name)
            # Only files inside the ground-truth folders: a JSON must not make the run read or
            # write anywhere else.
            if path.is_absolute() or ".." in path.parts or path.parts[0] not in GROUND_TRUTH_DIRS:
                continue
            if path.as_posix() not in found and (self.in_root / path).is_file():
                found.append(path.as_posix())
        return found

    def _moved_ground_truth(
        self, companions: list[str], input_size: tuple[int, ...], result: Perturbed
    ) -> dict[str, np.ndarray]:
        """Each companion with the image's recorded params applied; raises ValueError."""
        from fakescope.data.perturb import replay_flow, replay_mask

        moved: dict[str, np.ndarray] = {}
        for companion in companions:
            if companion in self.ground_truth:
                raise ValueError(f"{companion} already moved with another image")
            values = self._load_ground_truth(companion)
            if values.shape[:2] != tuple(input_size):
                raise ValueError(
                    f"{companion} is {values.shape[1]}x{values.shape[0]}, "
                    f"the image {input_size[1]}x{input_size[0]}"
                )
            if companion.startswith(f"{FLOW_DIR}/"):
                out = replay_flow(values, result.record)
            else:
                out = replay_mask(values, result.record)
            if out.shape[:2] != result.pixels.shape[:2]:  # a broken transform, not bad input
                raise RuntimeError(f"{companion} became {out.shape}, not {result.pixels.shape}")
            moved[companion] = out
        return moved

    def _load_ground_truth(self, relative: str) -> np.ndarray:
        import numpy as np
        from PIL import Image

        path = self.in_root / relative
        if relative.startswith(f"{FLOW_DIR}/"):
            if path.suffix != ".npy":
                raise ValueError(f"{relative}: flows are read from .npy files")
            flow = np.load(path, allow_pickle=False)
            if flow.ndim != 3 or flow.shape[2] != 2 or not np.issubdtype(flow.dtype, np.floating):
                raise ValueError(f"{relative}: expected a float (H, W, 2) flow, got {flow.shape}")
            return flow
        with Image.open(path) as image:
            return np.asarray(image if image.mode == "L" else image.convert("L"))

    def _save_ground_truth(self, relative: str, values: np.ndarray) -> None:
        import numpy as np
        from PIL import Image

        target = self.out_root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if relative.startswith(f"{FLOW_DIR}/"):
            np.save(target, values)
        else:
            Image.fromarray(values).save(target)  # the format of its name: masks stay PNG
        self.ground_truth.add(relative)

    def _left_out_ground_truth(self) -> list[str]:
        """Ground-truth files of IN_DIR that no perturbed image moved (its image was bad, or
        nothing names the file): copying them unchanged would give misaligned ground truth."""
        left_out = []
        for name in GROUND_TRUTH_DIRS:
            folder = self.in_root / name
            if folder.is_dir():
                for path in sorted(p for p in folder.rglob("*") if p.is_file()):
                    relative = self._relative(str(path))
                    if relative not in self.ground_truth:
                        left_out.append(relative)
        return left_out

    def _copy_ground_truth(self) -> None:
        for name in GROUND_TRUTH_DIRS:
            source = self.in_root / name
            if source.is_dir():
                shutil.copytree(source, self.out_root / name, dirs_exist_ok=True)
                self.ground_truth.update(
                    self._relative(str(p)) for p in source.rglob("*") if p.is_file()
                )

    def _write_summary(self, left_out: list[str]) -> None:
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
            # Whether pixels moved. Masks and flows moved with them ("transformed", with each
            # image's params) or did not need to ("copied"), so they match the images either way.
            "geometric": self.chain.geometric,
            "ground_truth": {
                "mode": "transformed" if self.chain.geometric else "copied",
                "files": len(self.ground_truth),
                "left_out": left_out,
            },
            "meta": f"meta/{META_GROUP}/<path without extension>.json",
        }
        path = self.out_root / PERTURB_JSON
        path.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")

    def _report(self, left_out: list[str]) -> None:
        from rich.markup import escape

        if left_out:
            shown = ", ".join(left_out[:_LISTED_LEFT_OUT])
            more = (
                f" and {len(left_out) - _LISTED_LEFT_OUT} more"
                if len(left_out) > _LISTED_LEFT_OUT
                else ""
            )
            self.console.print(
                f"[yellow]warning:[/yellow] {len(left_out)} mask/flow files left out: no "
                f"perturbed image moved them ({escape(shown)}{more}; see {PERTURB_JSON})",
                soft_wrap=True,
            )
        if self.n_unlisted:
            self.console.print(
                f"[yellow]warning:[/yellow] {self.n_unlisted} images are not in the input's "
                "manifest.csv and got no row",
                soft_wrap=True,
            )
        bad = f", {self.n_bad} bad files skipped" if self.n_bad else ""
        verb = "moved" if self.chain.geometric else "copied"
        truth = f", {verb} {len(self.ground_truth)} mask/flow files" if self.ground_truth else ""
        self.console.print(
            f"perturbed {self.n_ok} images into {escape(str(self.out_root))}{truth}{bad}",
            soft_wrap=True,
        )
