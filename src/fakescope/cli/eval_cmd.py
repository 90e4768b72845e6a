"""``fakescope eval`` and ``fakescope analyze``: the evaluation suite and its reports.

Both commands run :func:`fakescope.evaluation.suite.run_suite` (``analyze`` with the analysis
only) and write the same report three ways: a table on the terminal, ``--format json``, and
``--report out.html`` (one self-contained file with every plot embedded).
"""

from __future__ import annotations

import json
import shlex
import sys
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from fakescope.cli.common import open_output, progress_bar, stderr
from fakescope.models import DEFAULT_MODEL


class ReportFormat(StrEnum):
    table = "table"
    json = "json"


class Photos(StrEnum):
    auto = "auto"
    test = "test"
    all = "all"


class Task(StrEnum):
    detect = "detect"
    localize = "localize"


class Split(StrEnum):
    train = "train"
    calibration = "calibration"
    test = "test"


DataOption = Annotated[
    Path,
    typer.Option(
        exists=True,
        file_okay=False,
        help="Labelled dataset: real/ + fake/<group>/ or 0_real/1_fake (docs/dataset-layout.md).",
    ),
]
OptionalDataOption = Annotated[
    Path | None,
    typer.Option(
        "--data",
        exists=True,
        file_okay=False,
        help="Labelled dataset: real/ + fake/<group>/ or 0_real/1_fake (docs/dataset-layout.md); "
        "required for --task detect.",
    ),
]
ModelOption = Annotated[
    str,
    typer.Option(
        "--model", "-m", help="Model folder or bundled name (default: the bundled default model)."
    ),
]
FormatOption = Annotated[
    ReportFormat, typer.Option("--format", "-f", help="table (terminal) or json (to --out).")
]
OutOption = Annotated[Path | None, typer.Option("--out", "-o", help="Write the table/JSON here.")]
ReportOption = Annotated[
    Path | None,
    typer.Option("--report", help="Write one self-contained HTML report (plots embedded)."),
]
SeedOption = Annotated[int, typer.Option(help="Seeds every split, cap, bootstrap and attack.")]
PhotosOption = Annotated[
    Photos,
    typer.Option(
        help="test: only the test photos of a photo-grouped split (a benchmark's heldout + 30 % "
        "of its source photos); all: every image; auto: test on a benchmark, else all."
    ),
]
CapOption = Annotated[
    int, typer.Option(min=2, help="Seeded cap on images per fake group and per real source.")
]
CompareOption = Annotated[
    list[str],
    typer.Option(
        "--compare",
        help="Another model to analyse beside --model (repeatable), e.g. a torch model folder "
        "for the adversarial attacks.",
    ),
]
CacheOption = Annotated[bool, typer.Option(help="Cache scores for reruns (see --cache-dir).")]
CacheDirOption = Annotated[
    Path | None,
    typer.Option(
        file_okay=False,
        help="Score cache (default: $FAKESCOPE_CACHE/eval-scores or ~/.cache/fakescope/...).",
    ),
]
ThreadsOption = Annotated[
    int, typer.Option(min=1, help="Torch threads (learned detectors, attacks).")
]


def _parse_params(pairs: list[str]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise typer.BadParameter(
                f"expected KEY=VALUE, got {pair!r}", param_hint="--cross-param"
            )
        try:
            params[key] = json.loads(raw)
        except json.JSONDecodeError:
            params[key] = raw
    return params


def _set_threads(threads: int) -> None:
    from importlib.util import find_spec

    if find_spec("torch") is not None:
        import torch

        torch.set_num_threads(threads)


def _run(config: Any, progress: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    from fakescope.errors import FakescopeError, InputError, ModelError, WeightsMissingError
    from fakescope.evaluation.suite import run_suite

    def log(message: str) -> None:
        if progress:
            stderr.print(f"[dim]{message}[/dim]")

    try:
        return run_suite(config, log=log)
    except WeightsMissingError as exc:  # a detector trained for --train-on needs its backbone
        stderr.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc
    except ModelError as exc:
        raise typer.BadParameter(str(exc), param_hint="--model") from exc
    except InputError as exc:
        raise typer.BadParameter(str(exc), param_hint="--data") from exc
    except FakescopeError as exc:
        stderr.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from exc
    except ImportError as exc:  # a learned model or detector without its extra
        raise typer.BadParameter(f"a package is missing: {exc}", param_hint="--model") from exc


def _write(
    report: dict[str, Any],
    artifacts: dict[str, Any],
    output_format: ReportFormat,
    out: Path | None,
    html: Path | None,
) -> None:
    from fakescope.reports.writers import finalise, write_html, write_json

    final = finalise(report, artifacts)
    if html is not None:
        try:
            write_html(final, artifacts, html)
        except ImportError as exc:
            raise typer.BadParameter(
                f"the HTML report needs the report extra (pip install -e '.[report]'): {exc}",
                param_hint="--report",
            ) from exc
        stderr.print(f"wrote {html}")
    with open_output(out) as stream:
        if output_format is ReportFormat.json:
            stream.write(write_json(final))
        else:
            # Tables written to a file or pipe get room for the intervals; a terminal its width.
            width = None if stream.isatty() else 200
            print_tables(final, Console(file=stream, width=width))
    if final["n_errors"]:
        stderr.print(f"[yellow]{final['n_errors']} files could not be decoded and were skipped[/]")


def evaluate(
    data: OptionalDataOption = None,
    model: ModelOption = DEFAULT_MODEL,
    output_format: FormatOption = ReportFormat.table,
    out: OutOption = None,
    report: ReportOption = None,
    seed: SeedOption = 0,
    photos: PhotosOption = Photos.auto,
    max_per_group: CapOption = 300,
    bootstrap: Annotated[
        int, typer.Option(min=0, help="Bootstrap resamples for the 95 % intervals (0: none).")
    ] = 1000,
    train_on: Annotated[
        list[str],
        typer.Option(
            "--train-on",
            help="Cross-generator matrix: train a fresh detector on this family (repeatable; "
            "'all': every generator family) and test it on every group.",
        ),
    ] = [],  # noqa: B006 - typer reads the default, it is never mutated
    cross_detector: Annotated[
        str | None,
        typer.Option(help="Detector for --train-on (default: the model's, with its parameters)."),
    ] = None,
    cross_param: Annotated[
        list[str], typer.Option("--cross-param", help="KEY=VALUE for --cross-detector.")
    ] = [],  # noqa: B006
    max_train_per_class: Annotated[
        int, typer.Option(min=2, help="--train-on: training images per class (seeded draw).")
    ] = 400,
    cross_per_group: Annotated[
        int, typer.Option(min=2, help="--train-on: test images per fake group and real source.")
    ] = 100,
    perturb: Annotated[
        list[str],
        typer.Option(
            "--perturb",
            help="Robustness sweep (repeatable): jpeg, blur, resize, noise, webp, social, all, "
            "or a perturbation spec such as 'resize:0.5,jpeg:75'.",
        ),
    ] = [],  # noqa: B006
    robust_per_group: Annotated[
        int, typer.Option(min=2, help="Robustness: images per fake group (4x per real source).")
    ] = 20,
    audit: Annotated[bool, typer.Option(help="Run the bias audit on the dataset.")] = True,
    debias: Annotated[
        Path | None,
        typer.Option(file_okay=False, help="Evaluate this debiased copy alongside (data audit)."),
    ] = None,
    unseen_fakes: Annotated[
        list[Path],
        typer.Option(
            "--unseen-fakes",
            exists=True,
            file_okay=False,
            help="A folder of fakes from outside the dataset (e.g. genuine SD samples), tested "
            "as one more group against the shared reals (repeatable).",
        ),
    ] = [],  # noqa: B006
    analyze: Annotated[
        bool, typer.Option(help="Also run `fakescope analyze` into the report.")
    ] = False,
    compare: CompareOption = [],  # noqa: B006
    full: Annotated[
        bool,
        typer.Option(
            help="Everything: --train-on all --perturb all --analyze, and --debias DATA-debiased "
            "when that folder exists."
        ),
    ] = False,
    task: Annotated[
        Task,
        typer.Option(
            help="detect (images are real or fake) or localize (where: masks of a benchmark's "
            "forgeries, see docs/localization.md)."
        ),
    ] = Task.detect,
    benchmark: Annotated[
        Path | None,
        typer.Option(
            exists=True,
            file_okay=False,
            help="--task localize: a built benchmark (fake/<kind>, masks/<kind>, real/source).",
        ),
    ] = None,
    localizer: Annotated[
        str | None,
        typer.Option(
            help="--task localize: a localizer folder or bundled localizer name (default: the "
            "bundled default localizer)."
        ),
    ] = None,
    split: Annotated[
        Split, typer.Option(help="--task localize: the split of localization_splits to evaluate.")
    ] = Split.test,
    limit: Annotated[
        int | None,
        typer.Option(min=1, help="--task localize: at most N images per kind (seeded draw)."),
    ] = None,
    calibrate: Annotated[
        bool,
        typer.Option(
            help="--task localize: first set the threshold on the calibration split (clean)."
        ),
    ] = False,
    pristine: Annotated[
        list[str],
        typer.Option(
            "--pristine",
            help="--task localize: files or folders of your own untouched photos (repeatable; "
            "'-' reads paths from stdin). Instead of a benchmark: how many the localizer "
            "flags, and the --image-threshold that keeps false alarms at 1, 5 or 10 %% on them.",
        ),
    ] = [],  # noqa: B006 - typer reads the default, it is never mutated
    cache: CacheOption = True,
    cache_dir: CacheDirOption = None,
    threads: ThreadsOption = 1,
    progress: Annotated[bool, typer.Option(help="Show progress on stderr.")] = True,
) -> None:
    """Evaluate a model: metrics with 95 % intervals per group, bias check, cross-generator
    matrix, robustness grid and analysis, as a table, JSON and one HTML report.

    Accuracy, TPR and FPR are at the model's calibrated threshold, never at a threshold chosen
    on the test set.
    """
    from fakescope.evaluation.scoring import default_cache_dir
    from fakescope.evaluation.suite import SuiteConfig

    if task is Task.localize and pristine:
        _set_threads(threads)
        _evaluate_false_alarms(
            pristine,
            localizer_name=localizer,
            output_format=output_format,
            out=out,
            progress=progress,
        )
        return
    if task is Task.localize:
        _set_threads(threads)
        _evaluate_localization(
            benchmark or data,
            localizer_name=localizer,
            split=split.value,
            perturb=perturb,
            limit=limit,
            calibrate=calibrate,
            seed=seed,
            output_format=output_format,
            out=out,
            progress=progress,
        )
        return
    if data is None:
        raise typer.BadParameter("is required for --task detect", param_hint="--data")
    if full:
        train_on = train_on or ["all"]
        perturb = perturb or ["all"]
        analyze = True
        sibling = data.parent / f"{data.name}-debiased"
        if debias is None and sibling.is_dir():
            debias = sibling
    if perturb:
        from fakescope.evaluation.robustness import resolve_sweeps

        try:
            resolve_sweeps(perturb)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--perturb") from exc
    if debias is not None and not debias.is_dir():
        raise typer.BadParameter(f"{debias} is not a folder", param_hint="--debias")
    _set_threads(threads)
    config = SuiteConfig(
        data=data,
        model=model,
        seed=seed,
        photos=photos.value,
        max_per_group=max_per_group,
        n_resamples=bootstrap,
        train_on=tuple(train_on),
        cross_detector=cross_detector,
        cross_params=_parse_params(cross_param),
        max_train_per_class=max_train_per_class,
        cross_per_group=cross_per_group,
        perturb=tuple(perturb),
        robust_per_group=robust_per_group,
        audit=audit,
        debias=debias,
        unseen_fakes=tuple(unseen_fakes),
        analyze=analyze,
        compare=tuple(compare),
        cache_dir=(cache_dir or default_cache_dir()) if cache else None,
        command=_command_line(),
    )
    if config.analyze:
        from fakescope.analysis.suite import AnalysisConfig

        config.analysis = AnalysisConfig(seed=seed)
    report_data, artifacts = _run(config, progress)
    _write(report_data, artifacts, output_format, out, report)


def analyze(
    data: DataOption,
    model: ModelOption = DEFAULT_MODEL,
    output_format: FormatOption = ReportFormat.table,
    out: OutOption = None,
    report: ReportOption = None,
    compare: CompareOption = [],  # noqa: B006
    seed: SeedOption = 0,
    photos: PhotosOption = Photos.auto,
    max_per_group: CapOption = 300,
    only: Annotated[
        list[str],
        typer.Option(
            "--only",
            help="Sections (repeatable or comma-separated): spectra, matching, color, "
            "relevance, shift, adversarial. Default: all.",
        ),
    ] = [],  # noqa: B006
    per_group: Annotated[
        int, typer.Option(min=2, help="Fakes per group for colour, shift and matching.")
    ] = 16,
    adversarial_images: Annotated[
        int, typer.Option(min=2, help="Fakes attacked per differentiable detector.")
    ] = 48,
    pgd_steps: Annotated[int, typer.Option(min=1)] = 10,
    cache: CacheOption = True,
    cache_dir: CacheDirOption = None,
    threads: ThreadsOption = 1,
    progress: Annotated[bool, typer.Option(help="Show progress on stderr.")] = True,
) -> None:
    """Explain what detectors rely on: spectra and a spectral-matching attack, colour, channel
    relevance, shift invariance, FGSM/PGD attacks and SpectralDefense."""
    from fakescope.analysis.suite import AnalysisConfig, sections_from
    from fakescope.evaluation.scoring import default_cache_dir
    from fakescope.evaluation.suite import SuiteConfig

    try:
        sections = sections_from(only)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--only") from exc
    _set_threads(threads)
    config = SuiteConfig(
        data=data,
        model=model,
        seed=seed,
        photos=photos.value,
        max_per_group=max_per_group,
        audit=False,
        analyze=True,
        analysis=AnalysisConfig(
            seed=seed,
            sections=sections,
            per_group=per_group,
            adversarial_images=adversarial_images,
            pgd_steps=pgd_steps,
        ),
        compare=tuple(compare),
        cache_dir=(cache_dir or default_cache_dir()) if cache else None,
        command=_command_line(),
    )
    report_data, artifacts = _run(config, progress)
    _write(report_data, artifacts, output_format, out, report)


def _command_line() -> str:
    return shlex.join(["fakescope", *sys.argv[1:]])


# ------------------------------------------------------------------ --task localize


def _evaluate_localization(
    root: Path | None,
    *,
    localizer_name: str | None,
    split: str,
    perturb: list[str],
    limit: int | None,
    calibrate: bool,
    seed: int,
    output_format: ReportFormat,
    out: Path | None,
    progress: bool,
) -> None:
    """``eval --task localize``: the localizer over a benchmark split under perturbations.

    With ``--out`` the JSON report goes there and the tables to stdout; without it, stdout
    gets the tables, or the JSON with ``--format json``.
    """
    from fakescope.cli.localize import default_localizer, load_localizer_option
    from fakescope.data.benchmark_splits import localization_splits
    from fakescope.evaluation.localization import (
        localization_report,
        resolve_localization_perturbations,
        select_items,
    )

    if root is None:
        raise typer.BadParameter(
            "--task localize needs a benchmark folder", param_hint="--benchmark"
        )
    try:
        specs = resolve_localization_perturbations(perturb)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--perturb") from exc
    try:
        splits = localization_splits(root, seed)
    except (OSError, ValueError) as exc:  # a folder that is not a benchmark
        raise typer.BadParameter(
            f"cannot read the benchmark: {exc}", param_hint="--benchmark"
        ) from exc
    items = select_items(splits[split], limit, seed)
    if not any(item.kind != "pristine" for item in items):
        raise typer.BadParameter(
            f"the {split} split of {root} holds no forgery with a mask (fake/<kind>/ + "
            "masks/<kind>/, docs/dataset-layout.md)",
            param_hint="--benchmark",
        )
    localizer_name = localizer_name or default_localizer()
    method = load_localizer_option(localizer_name)
    if calibrate:
        _calibrate_localizer(method, splits["calibration"], limit, seed)
    with progress_bar(progress and stderr.is_terminal) as bar:
        task = bar.add_task("localizing", total=len(items) * len(specs))
        report = localization_report(
            method,
            items,
            specs,
            name=localizer_name,
            benchmark=str(root),
            split=split,
            seed=seed,
            limit=limit,
            on_progress=lambda: bar.advance(task),
        )
    report["command"] = _command_line()
    report["localizer"]["calibrated_here"] = calibrate
    results = report["perturbations"]
    _emit_report(report, out, output_format, print_localization_tables)
    errors = sum(block["n_errors"] for block in results.values())
    if errors:
        stderr.print(f"[yellow]{errors} images could not be evaluated and were skipped[/]")


def _evaluate_false_alarms(
    paths: list[str],
    *,
    localizer_name: str | None,
    output_format: ReportFormat,
    out: Path | None,
    progress: bool,
) -> None:
    """``eval --task localize --pristine``: false alarms on the user's own untouched photos."""
    from fakescope.cli.common import expand_inputs
    from fakescope.cli.localize import default_localizer, load_localizer_option
    from fakescope.evaluation.false_alarms import false_alarm_report
    from fakescope.io.discover import iter_input_files

    localizer_name = localizer_name or default_localizer()
    method = load_localizer_option(localizer_name)
    with progress_bar(progress and stderr.is_terminal) as bar:
        task = bar.add_task("localizing", total=None)
        report = false_alarm_report(
            method,
            iter_input_files(expand_inputs(paths)),
            name=localizer_name,
            on_progress=lambda: bar.advance(task),
        )
    report["command"] = _command_line()
    if report["n_images"] == 0:
        raise typer.BadParameter(
            f"no readable image among {report['n_errors']} inputs", param_hint="--pristine"
        )
    _emit_report(report, out, output_format, print_false_alarm_tables)


def _emit_report(
    report: dict[str, Any],
    out: Path | None,
    output_format: ReportFormat,
    print_tables: Callable[[dict[str, Any], Console], None],
) -> None:
    """With ``--out`` the JSON goes there and the tables to stdout; without it, stdout gets the
    tables, or the JSON with ``--format json``."""
    from fakescope.reports.writers import write_json

    if out is not None:
        try:
            out.write_text(write_json(report), encoding="utf-8")
        except OSError as exc:
            raise typer.BadParameter(
                f"cannot write {out}: {exc.strerror}", param_hint="--out"
            ) from exc
        stderr.print(f"wrote {out}")
    if out is None and output_format is ReportFormat.json:
        sys.stdout.write(write_json(report))
        return
    # Tables written to a pipe get room for every column; a terminal its own width.
    width = None if sys.stdout.isatty() else 200
    print_tables(report, Console(file=sys.stdout, width=width))


def print_false_alarm_tables(report: dict[str, Any], console: Console) -> None:
    """The flagged images, then the image thresholds for the target false-alarm rates."""
    loc = report["localizer"]
    flagged = [row for row in report["images"] if row.get("flagged")]
    table = Table(
        title=f"{loc['name']} on {report['n_images']} untouched images: {report['n_flagged']} "
        f"flagged at image threshold {loc['image_threshold']:.4f}"
    )
    for column in ("score", "masked", "image"):
        table.add_column(column, justify="left" if column == "image" else "right")
    for row in sorted(flagged, key=lambda row: -row["score"]):
        table.add_row(f"{row['score']:.4f}", f"{row['tampered_fraction']:.1%}", row["path"])
    console.print(table)
    rates = Table(title="--image-threshold for a false-alarm rate on these images")
    rates.add_column("at most", justify="right")
    rates.add_column("--image-threshold", justify="right")
    for rate, threshold in report["image_threshold_for_rate"].items():
        rates.add_row(f"{float(rate):.0%}", f"{threshold:.6f}")
    console.print(rates)
    if report["n_errors"]:
        console.print(f"[yellow]{report['n_errors']} inputs could not be read and were skipped[/]")


def _calibrate_localizer(method: Any, items: list[Any], limit: int | None, seed: int) -> None:
    """Set the threshold that maximises mean pixel F1 on the (clean) calibration split."""
    from fakescope.errors import InputError
    from fakescope.evaluation.localization import prepare_item, select_items

    images, masks, tables = [], [], []
    for item in select_items(items, limit, seed):
        try:
            prepared = prepare_item(item, None, seed, "clean")
        except InputError:
            continue
        images.append(prepared.pixels)
        masks.append(prepared.truth)
        tables.append(prepared.jpeg_quantization)
    if not images:
        raise typer.BadParameter("the calibration split is empty", param_hint="--calibrate")
    method.calibrate(images, masks, tables)
    stderr.print(
        f"[dim]thresholds: pixel {method.threshold:.3f}, image {method.image_threshold:.3f} "
        f"(calibrated on {len(images)} images)[/]"
    )


#: The metrics of a localization table row, after its counts (keys of the report's blocks).
LOCALIZATION_COLUMNS = ("f1_all", "f1_tampered", "f1_pristine", "iou_all", "iou_tampered",
                        "pixel_auc", "image_ap")  # fmt: skip


def print_localization_tables(report: dict[str, Any], console: Console) -> None:
    """One row per perturbation x scope (overall, then each forgery kind)."""
    loc = report["localizer"]
    bench = report["benchmark"]
    table = Table(
        title=f"{loc['name']} ({loc['method']}, pixel threshold {loc['threshold']:.3f}, image "
        f"threshold {loc.get('image_threshold', loc['threshold']):.3f}) on "
        f"{bench['path']} ({bench['split']} split, {bench['n_items']} images)"
    )
    columns = ("perturbation", "kind", "tampered", "pristine", "F1 all", "F1 tampered",
               "F1 pristine", "IoU all", "IoU tampered", "pixel AUC", "image AP")  # fmt: skip
    for column in columns:
        table.add_column(column, justify="left" if column in ("perturbation", "kind") else "right")
    for spec, block in report["perturbations"].items():
        scopes = [("overall", block["overall"]), *block["kinds"].items()]
        for i, (scope, m) in enumerate(scopes):
            table.add_row(
                spec if i == 0 else "",
                scope,
                str(m["n_tampered"]),
                str(m["n_pristine"]),
                *(_fmt(m.get(key)) for key in LOCALIZATION_COLUMNS),
                end_section=i == len(scopes) - 1,
            )
    console.print(table)


# ------------------------------------------------------------------ terminal tables


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def _with_ci(block: dict[str, Any], key: str) -> str:
    interval = (block.get("ci") or {}).get(key)
    text = _fmt(block.get(key))
    return f"{text} [{interval[0]:.2f}, {interval[1]:.2f}]" if interval else text


def print_tables(report: dict[str, Any], console: Console) -> None:
    """The report's main numbers as terminal tables."""
    title = (
        f"{report['model']['name']} on {report['data']['path']} ({report['data']['selection']}; "
        f"threshold {report['threshold']:.4f} at target FPR {report['target_fpr']:.3g})"
    )
    table = Table(title=title)
    columns = ("group", "real", "fake", "AP", "ROC-AUC", "TPR@1%FPR", "TPR@5%FPR",
               "acc@thr", "FPR@thr", "ECE")  # fmt: skip
    for column in columns:
        table.add_column(column, justify="left" if column == "group" else "right")
    notes = report.get("bias", {}).get("notes", {})
    for name, block in [("overall", report["overall"]), *report["groups"].items()]:
        table.add_row(
            name + (" (!)" if name in notes else ""),
            str(block["n_real"]),
            str(block["n_fake"]),
            *(
                _with_ci(block, key)
                for key in ("ap", "roc_auc", "tpr_at_fpr_1", "tpr_at_fpr_5", "accuracy", "fpr")
            ),
            _fmt(block.get("ece")),
        )
    console.print(table)
    for scope, note in notes.items():
        console.print(f"(!) {scope}: {note}")
    sources = Table(title="FPR at the calibrated threshold per real source")
    for column in ("real source", "images", "FPR@thr"):
        sources.add_column(column)
    for name, row in report["real_sources"].items():
        sources.add_row(name, str(row["n"]), f"{row['fpr']:.1%}")
    console.print(sources)
    if "cross_generator" in report:
        from fakescope.evaluation.cross_generator import to_markdown

        console.print("Cross-generator matrix (AP / TPR@5%FPR):")
        console.print(to_markdown(report["cross_generator"]), markup=False)
    if "robustness" in report:
        robust = Table(title="Robustness (AP / TPR@5%FPR / FPR@thr)")
        for column in ("sweep", "setting", "AP", "TPR@5%FPR", "FPR@thr"):
            robust.add_column(column)
        for name, sweep in report["robustness"]["sweeps"].items():
            for point in sweep["points"]:
                robust.add_row(
                    name, point["spec"], _fmt(point["ap"]), _fmt(point["tpr_at_fpr_5"]),
                    "-" if point["fpr"] is None else f"{point['fpr']:.1%}",
                )  # fmt: skip
        console.print(robust)
    if "analysis" in report:
        console.print(
            "analysis: " + ", ".join(report["analysis"]["timings"])
            + " (see --report or --format json for the numbers)"
        )  # fmt: skip
