"""The ``fakescope`` command line."""

from __future__ import annotations

import json
import sys
from contextlib import nullcontext
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from fakescope import __version__
from fakescope.cli import eval_cmd
from fakescope.cli.common import expand_inputs, open_output, progress_bar, stderr
from fakescope.cli.data import data_app
from fakescope.cli.export import export
from fakescope.cli.localize import localize
from fakescope.cli.serve import serve
from fakescope.cli.weights import weights_app
from fakescope.errors import FakescopeError
from fakescope.io.image import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS
from fakescope.models import DEFAULT_MODEL
from fakescope.pipeline.engines import DEFAULT_ENGINE, list_engines
from fakescope.results import ScanResult
from fakescope.video.decode import DEFAULT_MAX_FRAMES

app = typer.Typer(
    help="Tell whether images were generated or manipulated by AI, with calibrated scores.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(data_app, name="data")
app.add_typer(weights_app, name="weights")
app.command("serve")(serve)
app.command("export")(export)
app.command("localize")(localize)


class ScanFormat(StrEnum):
    table = "table"
    jsonl = "jsonl"
    csv = "csv"
    parquet = "parquet"


# The scan engines by name, from their registry (the Ray engine loads only when chosen).
ScanEngine = StrEnum("ScanEngine", {name: name for name in list_engines()})  # type: ignore[misc]


class VideoSampling(StrEnum):
    uniform = "uniform"
    keyframe = "keyframe"


class VideoAggregate(StrEnum):
    topk = "topk"
    mean = "mean"
    max = "max"


def _version(value: bool) -> None:
    if value:
        print(f"fakescope {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """fakescope: detection of AI-generated images with calibrated verdicts."""


def _face_cropper() -> Any:
    """The MTCNN face cropper of ``scan --faces``; a usage error names what is missing."""
    try:
        from fakescope.video.faces import FaceCropper
    except ImportError as exc:  # torch is the optional extra face mode needs
        raise typer.BadParameter(
            f"face mode needs torch (pip install 'fakescope[torch]'): {exc}", param_hint="--faces"
        ) from exc
    try:
        return FaceCropper()
    except FakescopeError as exc:  # weights not fetched
        raise typer.BadParameter(str(exc), param_hint="--faces") from exc


def _load_model(model: str) -> Any:
    from fakescope.models import load_model

    try:
        return load_model(model)
    except FakescopeError as exc:
        raise typer.BadParameter(str(exc), param_hint="--model") from exc


def _use_onnx(detector: Any, model: str) -> None:
    from fakescope.detectors.onnx_export import use_exported_onnx
    from fakescope.models import resolve_model_dir

    try:
        switched = use_exported_onnx(detector, resolve_model_dir(model))
    except FakescopeError as exc:
        raise typer.BadParameter(str(exc), param_hint="--onnx") from exc
    if not switched:
        raise typer.BadParameter(
            f"the {detector.name!r} model has no torch network to run through ONNX",
            param_hint="--onnx",
        )


@app.command()
def scan(
    paths: Annotated[
        list[str],
        typer.Argument(metavar="PATH", help="Files or folders; '-' reads paths from stdin."),
    ],
    model: Annotated[
        str, typer.Option("--model", "-m", help="A model folder or a bundled model name.")
    ] = DEFAULT_MODEL,
    output_format: Annotated[
        ScanFormat | None,
        typer.Option(
            "--format",
            "-f",
            help="table (default), jsonl, csv, or parquet (the default for "
            "an --out ending in .parquet).",
        ),
    ] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write results here.")] = None,
    engine: Annotated[
        ScanEngine,
        typer.Option(help="local: every core of this machine; ray: a Ray cluster (the ray extra)."),
    ] = ScanEngine[DEFAULT_ENGINE],
    workers: Annotated[
        int | None,
        typer.Option(min=1, help="Worker processes (Ray actors); default: every core (CPU)."),
    ] = None,
    address: Annotated[
        str | None, typer.Option(help="Ray cluster to join (--engine ray), e.g. 'auto'.")
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1, max=4096)] = 16,
    max_pixels: Annotated[
        int, typer.Option(min=1, help="Refuse images with more pixels (decompression bombs).")
    ] = DEFAULT_MAX_PIXELS,
    max_bytes: Annotated[
        int, typer.Option(min=1, help="Refuse files larger than this.")
    ] = DEFAULT_MAX_BYTES,
    frames: Annotated[
        int, typer.Option(min=0, help="Videos: frames scored per video (0: every frame).")
    ] = DEFAULT_MAX_FRAMES,
    sampling: Annotated[
        VideoSampling,
        typer.Option(help="Videos: frames spread evenly (uniform) or keyframes only (faster)."),
    ] = VideoSampling.uniform,
    aggregate: Annotated[
        VideoAggregate,
        typer.Option(help="Videos: one score from the frames' (topk: mean of the top quarter)."),
    ] = VideoAggregate.topk,
    faces: Annotated[
        bool,
        typer.Option(
            help="Videos: score the faces MTCNN finds (a frame scores as its most suspicious "
            "face; needs torch and `fakescope weights fetch mtcnn-pnet/-rnet/-onet`)."
        ),
    ] = False,
    progress: Annotated[bool, typer.Option(help="Show progress on stderr.")] = True,
    onnx: Annotated[
        bool,
        typer.Option(help="Run torch networks through onnxruntime (after `export-onnx`)."),
    ] = False,
    db: Annotated[
        str | None,
        typer.Option(
            help="Case database (SQLite file or postgresql://...): skip files it knows, store "
            "every result; a re-run resumes an interrupted scan."
        ),
    ] = None,
) -> None:
    """Scan images and folders (recursively); one result row per file, bad files included.

    `--engine local` (the default) spreads the work over `--workers` processes on this
    machine, `--engine ray` over a Ray cluster, where `--out DIR.parquet` writes Parquet shards.
    """
    from fakescope.cli.output import WRITERS, Tally, detector_names
    from fakescope.pipeline.engines import ModelSource, ScanLimits, create_engine

    calibrated = _load_model(model)
    if onnx:
        _use_onnx(calibrated.detector, model)
    if output_format is None:
        parquet_out = out is not None and out.suffix.lower() == ".parquet"
        output_format = ScanFormat.parquet if parquet_out else ScanFormat.table
    if output_format is ScanFormat.parquet and out is None:
        raise typer.BadParameter("Parquet is written to a file: add --out FILE", param_hint="--out")
    source = ModelSource.of(model, onnx=onnx, preloaded=calibrated)
    from fakescope.video.scan import VideoScanOptions

    video = VideoScanOptions(
        max_frames=frames or None,
        sampling=sampling.value,
        aggregate=aggregate.value,
        face_cropper=_face_cropper() if faces else None,
    )
    limits = ScanLimits(
        batch_size=batch_size, max_pixels=max_pixels, max_bytes=max_bytes, video=video
    )
    try:
        scanner = create_engine(
            engine.value, source, workers=workers, limits=limits, address=address
        )
    except (FakescopeError, ValueError) as exc:  # the engine's extra is missing, bad options
        raise typer.BadParameter(str(exc), param_hint="--engine") from exc
    recorder = None
    inputs = expand_inputs(paths)
    if db is not None:
        from fakescope.cli.export import open_scan_recorder

        recorder = open_scan_recorder(db, calibrated.name, commit_every=batch_size)
        inputs = recorder.pending(inputs)
    tally = Tally()
    # Rows streamed to the same terminal would tear through a live progress display.
    show_progress = progress and stderr.is_terminal and (out is not None or not sys.stdout.isatty())
    with scanner, progress_bar(show_progress) as bar, recorder or nullcontext():
        task = bar.add_task("scanning", total=None)

        def count(result: ScanResult) -> None:
            if recorder is not None:
                recorder.add(result)
            tally.add(result)
            bar.advance(task)

        if output_format is ScanFormat.parquet:
            assert out is not None
            try:
                scanner.write_parquet(inputs, out, on_result=count)
            except (FileExistsError, ImportError) as exc:  # ImportError: pyarrow is missing
                raise typer.BadParameter(str(exc), param_hint="--out") from exc
        else:
            with open_output(out) as stream:
                writer = WRITERS[output_format.value](stream, detector_names(calibrated.detector))
                for result in scanner.scan(inputs):
                    writer.write(result)
                    count(result)
                writer.close()
    stderr.print(f"[dim]{tally.summary()} (model {calibrated.name})[/dim]")
    if recorder is not None:
        stderr.print(f"[dim]{recorder.summary()}[/dim]")


def _parse_value(raw: str) -> Any:
    """A JSON value (numbers, true/false, null, lists, dicts), else the text itself.

    Text with commas that is not JSON becomes a list (``members=spectral,npr``), its items
    parsed the same way, so lists need no JSON quoting on a shell line.
    """
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        pass
    if "," in raw:
        return [_parse_value(part.strip()) for part in raw.split(",") if part.strip()]
    return raw


def _parse_params(pairs: list[str]) -> dict[str, Any]:
    """``-p KEY=VALUE`` pairs; a dotted key sets a nested value.

    ``-p member_params.npr.epochs=3`` is ``member_params={"npr": {"epochs": 3}}``, merged with
    other pairs that write into the same dict (later pairs win).
    """
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        path = key.split(".")
        if not sep or not all(path):
            raise typer.BadParameter(f"expected KEY=VALUE, got {pair!r}", param_hint="--param")
        target = params
        for part in path[:-1]:
            target = target.setdefault(part, {})
            if not isinstance(target, dict):
                raise typer.BadParameter(
                    f"{pair!r}: {part!r} is already set to a value that is not a dict",
                    param_hint="--param",
                )
        value = _parse_value(raw)
        if isinstance(target.get(path[-1]), dict) and isinstance(value, dict):
            target[path[-1]] = {**target[path[-1]], **value}
        else:
            target[path[-1]] = value
    return params


@app.command()
def train(
    detector: Annotated[
        str, typer.Argument(help="A registered detector (see `fakescope detectors`).")
    ],
    data: Annotated[
        Path,
        typer.Option(
            exists=True,
            file_okay=False,
            help="Dataset: real/ + fake/[<generator>/] or 0_real/1_fake.",
        ),
    ],
    out: Annotated[Path, typer.Option(file_okay=False, help="Model folder to write.")],
    param: Annotated[
        list[str], typer.Option("--param", "-p", help="Detector parameter KEY=VALUE (repeatable).")
    ] = [],  # noqa: B006 - typer reads the default, it is never mutated
    target_fpr: Annotated[float, typer.Option(min=0.0, max=0.5)] = 0.05,
    review_fpr: Annotated[float, typer.Option(min=0.0, max=0.9)] = 0.20,
    holdout: Annotated[float, typer.Option(min=0.05, max=0.5)] = 0.3,
    seed: int = 0,
    fakes: Annotated[
        list[str],
        typer.Option(
            "--fakes",
            help="Train on these fake groups only (generator families, repeatable); reals "
            "of the dataset and of these groups are all kept. Default: every group.",
        ),
    ] = [],  # noqa: B006 - typer reads the default, it is never mutated
    progress: Annotated[bool, typer.Option(help="Show progress on stderr.")] = True,
) -> None:
    """Fit a detector and calibrate its threshold on held-out real images.

    Parameters are JSON values (text otherwise; a comma-separated text is a list); a dotted
    key sets a nested value, e.g. a fusion of two detectors with a short NPR training:
    `-p members=spectral,npr -p member_params.npr.epochs=2`.
    """
    from fakescope.data.layout import discover_dataset, select_fake_groups
    from fakescope.detectors import create
    from fakescope.errors import InputError
    from fakescope.pipeline.training import TrainingConfig, train_model

    params = _parse_params(param)
    try:
        create(detector, **params)
    except KeyError as exc:
        raise typer.BadParameter(str(exc.args[0]), param_hint="DETECTOR") from exc
    except (TypeError, ValueError) as exc:
        raise typer.BadParameter(str(exc), param_hint="--param") from exc
    except ImportError as exc:  # a learned detector without its extra (torch, onnxruntime)
        raise typer.BadParameter(
            f"{detector!r} needs a package that is not installed: {exc}", param_hint="DETECTOR"
        ) from exc
    config = TrainingConfig(
        detector=detector,
        params=params,
        target_fpr=target_fpr,
        review_fpr=max(review_fpr, target_fpr),
        holdout=holdout,
        seed=seed,
        name=out.name,
    )
    try:
        items = select_fake_groups(discover_dataset(data), fakes)
        with progress_bar(progress and stderr.is_terminal) as bar:
            task = bar.add_task("decoding", total=len(items))
            training: list[Any] = []  # the training task, added when training reports first

            def on_training(step: int, total: int) -> None:
                if not training:
                    training.append(bar.add_task("training", total=total))
                bar.update(training[0], completed=step, total=total)

            model = train_model(
                data,
                config,
                lambda n: bar.advance(task, n),
                items=items,
                on_train_progress=on_training,
            )
    except InputError as exc:  # the dataset cannot serve: the user's input is at fault
        raise typer.BadParameter(str(exc), param_hint="--data") from exc
    except FakescopeError as exc:
        stderr.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc
    model.save(out)
    calibration = model.calibration
    stderr.print(
        f"saved {out}: threshold {calibration.threshold:.4f} at target FPR "
        f"{calibration.target_fpr:.3g} ({calibration.n_calibration} held-out reals)"
    )
    for note in calibration.warnings:
        stderr.print(f"[yellow]warning:[/yellow] {note}")
    _print_metrics_table(model.info["validation"], "validation on held-out data")


# `eval` and `analyze` live in their own module (the evaluation suite and its reports).
app.command("eval")(eval_cmd.evaluate)
app.command("analyze")(eval_cmd.analyze)


def _fmt(value: Any) -> str:
    return "-" if value is None else (f"{value:.3f}" if isinstance(value, float) else str(value))


def _print_metrics_table(report: dict[str, Any], title: str, console: Console = stderr) -> None:
    table = Table(title=title)
    columns = ("group", "real", "fake", "AP", "ROC-AUC", "acc@thr", "TPR@1%FPR", "TPR@5%FPR")
    for column in columns:
        table.add_column(column, justify="left" if column == "group" else "right")
    rows = [("overall", report["overall"]), *report["groups"].items()]
    for name, m in rows:
        table.add_row(
            name,
            str(m["n_real"]),
            str(m["n_fake"]),
            *(
                _fmt(m.get(k))
                for k in ("ap", "roc_auc", "accuracy", "tpr_at_fpr_1", "tpr_at_fpr_5")
            ),
        )
    console.print(table)


@app.command("export-onnx")
def export_onnx_command(
    model_dir: Annotated[
        Path,
        typer.Argument(
            exists=True, file_okay=False, metavar="MODEL_DIR", help="A trained model folder."
        ),
    ],
    check: Annotated[
        bool, typer.Option(help="Compare onnxruntime's logits with torch's after exporting.")
    ] = True,
    tolerance: Annotated[float, typer.Option(min=0.0)] = 1e-4,
) -> None:
    """Export a learned (torch) detector to model.onnx next to its config.json.

    A fusion model exports each of its torch members into its member folder. Scan with the
    exported files through onnxruntime with `fakescope scan --onnx`.
    """
    from fakescope.detectors import load_detector
    from fakescope.detectors.onnx_export import export_onnx, torch_members

    try:
        detector = load_detector(model_dir)
    except FakescopeError as exc:
        raise typer.BadParameter(str(exc), param_hint="MODEL_DIR") from exc
    except ImportError as exc:
        raise typer.BadParameter(f"cannot load the model: {exc}", param_hint="MODEL_DIR") from exc
    targets = torch_members(detector, model_dir)
    if not targets:
        raise typer.BadParameter(
            f"{model_dir} holds a {detector.name!r} detector: no torch network to export",
            param_hint="MODEL_DIR",
        )
    for name, member, folder in targets:
        try:
            path = export_onnx(member, folder, check=check, tolerance=tolerance)
        except ImportError as exc:
            stderr.print(f"[red]error:[/red] exporting needs torch and onnx: {exc}")
            raise typer.Exit(1) from exc
        except FakescopeError as exc:
            stderr.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(1) from exc
        stderr.print(f"{name}: wrote {path}")


@app.command()
def detectors() -> None:
    """List the registered detectors and localizers, and the bundled models of each."""
    from fakescope.detectors import get_detector_class, list_detectors
    from fakescope.models import list_bundled_models

    for name in list_detectors():
        try:
            doc = (get_detector_class(name).__doc__ or "").strip().splitlines()
        except (ImportError, AttributeError, TypeError) as exc:  # a broken plugin, not ours
            print(f"{name}\tcannot be loaded: {exc}")
            continue
        print(f"{name}\t{doc[0] if doc else ''}")
    for name in list_bundled_models():
        print(f"model:{name}\tbundled calibrated model (use --model {name})")
    from fakescope.localizers import get_localizer_class, list_bundled_localizers, list_localizers

    for name in list_localizers():
        try:
            doc = (get_localizer_class(name).__doc__ or "").strip().splitlines()
        except (ImportError, AttributeError, TypeError) as exc:
            print(f"localizer:{name}\tcannot be loaded: {exc}")
            continue
        print(f"localizer:{name}\t{doc[0] if doc else ''}")
    for name in list_bundled_localizers():
        print(f"localizer-model:{name}\tbundled localizer (use fakescope localize -l {name})")


def run() -> None:
    app()
