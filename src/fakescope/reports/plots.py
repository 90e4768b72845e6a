"""The report's figures (matplotlib, Agg backend), rendered to PNG bytes for embedding.

Each plot is a :class:`PlotSpec`: an id, a title, the report section it belongs to, a test of
whether the report has what it needs, and a function that draws it from the report (the same
numbers as the JSON) and the artifacts (score arrays, spectra) of the run.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure

Report = dict[str, Any]
Artifacts = dict[str, Any]
DPI = 100
MAX_CURVES = 14


def _figure(width: float, height: float, ncols: int = 1, nrows: int = 1) -> tuple[Figure, Any]:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    axes = figure.subplots(nrows, ncols, squeeze=False)
    return figure, axes


def to_png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    return buffer.getvalue()


def data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _group_curves(artifacts: Artifacts) -> list[tuple[str, np.ndarray, np.ndarray]]:
    from fakescope.data.layout import fake_groups, group_indices

    labels, scores, items = artifacts["labels"], artifacts["scores"], artifacts["items"]
    curves = [("overall", labels, scores)]
    for group in fake_groups(items)[:MAX_CURVES]:
        index = group_indices(items, group)
        curves.append((group, labels[index], scores[index]))
    return curves


def _colors(n: int) -> list[Any]:
    from matplotlib import colormaps

    # tab10's colours are the most distinct; tab20 (pairs of shades) only for many curves.
    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


# ------------------------------------------------------------------ metrics plots


def plot_roc(report: Report, artifacts: Artifacts) -> Figure:
    from sklearn.metrics import roc_curve

    figure, axes = _figure(13, 4.8, ncols=2)
    curves = _group_curves(artifacts)
    for (name, labels, scores), color in zip(curves, _colors(len(curves)), strict=True):
        fpr, tpr, _ = roc_curve(labels, scores)
        auc = (report["overall"] if name == "overall" else report["groups"][name])["roc_auc"]
        width = 2.6 if name == "overall" else 1.2
        style = {"color": "black" if name == "overall" else color, "linewidth": width}
        for ax in axes[0]:
            ax.plot(fpr, tpr, label=f"{name} ({auc:.3f})", **style)
    overall = report["overall"]
    for ax in axes[0]:
        ax.plot(
            [overall["fpr"]],
            [overall["tpr"]],
            "o",
            color="crimson",
            markersize=8,
            zorder=5,
            label=f"calibrated threshold {report['threshold']:.3f}",
        )
        ax.axvline(report["target_fpr"], color="crimson", linestyle=":", linewidth=1)
        ax.set_xlabel("false-positive rate")
        ax.set_ylabel("true-positive rate")
        ax.grid(alpha=0.3)
    axes[0][0].plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=0.8)
    axes[0][0].set_title("ROC (ROC-AUC in brackets)")
    axes[0][1].set_xscale("log")
    axes[0][1].set_xlim(1e-3, 1)
    axes[0][1].set_title("ROC, log FPR (the low-FPR regime)")
    axes[0][1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))
    return figure


def plot_pr(report: Report, artifacts: Artifacts) -> Figure:
    from sklearn.metrics import precision_recall_curve

    figure, axes = _figure(9.5, 5.2)
    ax = axes[0][0]
    curves = _group_curves(artifacts)
    for (name, labels, scores), color in zip(curves, _colors(len(curves)), strict=True):
        precision, recall, _ = precision_recall_curve(labels, scores)
        ap = (report["overall"] if name == "overall" else report["groups"][name])["ap"]
        width = 2.6 if name == "overall" else 1.2
        ax.step(
            recall,
            precision,
            where="post",
            label=f"{name} ({ap:.3f})",
            color="black" if name == "overall" else color,
            linewidth=width,
        )
    base = report["overall"]["n_fake"] / max(
        1, report["overall"]["n_fake"] + report["overall"]["n_real"]
    )
    ax.axhline(base, color="grey", linestyle="--", linewidth=0.8, label=f"base rate {base:.3f}")
    ax.set_xlabel("recall (TPR)")
    ax.set_ylabel("precision")
    ax.set_ylim(0, 1.02)
    ax.set_title("Precision-recall (AP in brackets); each group against its reals")
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.02, 0.5))
    ax.grid(alpha=0.3)
    return figure


def plot_reliability(report: Report, artifacts: Artifacts) -> Figure:
    from fakescope.evaluation.calibration_error import reliability_curve

    figure, axes = _figure(11, 4.4, ncols=2)
    labels, scores = artifacts["labels"], artifacts["scores"]
    curve = reliability_curve(labels, scores)
    centres = (curve.edges[:-1] + curve.edges[1:]) / 2
    used = curve.counts > 0
    ax = axes[0][0]
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=0.8, label="perfect")
    ax.plot(
        curve.mean_score[used],
        curve.fraction_fake[used],
        "o-",
        color="navy",
        label=f"model (ECE {report['overall']['ece']:.3f})",
    )
    ax.set_xlabel("mean score in bin")
    ax.set_ylabel("fraction fake in bin")
    ax.set_title("Reliability diagram (15 equal-width bins)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    ax = axes[0][1]
    bins = np.linspace(0, 1, 41)
    ax.hist(scores[labels == 0], bins=bins, alpha=0.6, label="real", color="tab:blue")
    ax.hist(scores[labels == 1], bins=bins, alpha=0.6, label="fake", color="tab:red")
    ax.axvline(report["threshold"], color="black", linestyle=":", label="calibrated threshold")
    ax.set_yscale("log")
    ax.set_xlabel("score (P(fake))")
    ax.set_ylabel("images")
    ax.set_title("Score histogram by class")
    ax.legend(fontsize=8)
    del centres
    return figure


def plot_scores_by_group(report: Report, artifacts: Artifacts) -> Figure:
    labels, scores, items = artifacts["labels"], artifacts["scores"], artifacts["items"]
    names = [f"real ({source})" for source in report["real_sources"]]
    data = []
    buckets = artifacts.get("buckets")
    for source in report["real_sources"]:
        if buckets is not None:
            data.append(scores[[b == f"real:{source}" for b in buckets]])
        else:
            data.append(scores[labels == 0])
    for group in report["groups"]:
        names.append(group)
        data.append(scores[[it.label == 1 and it.group == group for it in items]])
    figure, axes = _figure(9, 0.35 * len(names) + 1.6)
    ax = axes[0][0]
    ax.boxplot(data, orientation="horizontal", tick_labels=names, showfliers=False)
    ax.axvline(report["threshold"], color="crimson", linestyle=":", label="calibrated threshold")
    ax.set_xlabel("score (P(fake))")
    ax.set_xlim(0, 1)
    ax.set_title("Scores per real source and fake group (box: quartiles, whiskers: 1.5 IQR)")
    ax.legend(fontsize=8, loc="lower right")
    ax.invert_yaxis()
    return figure


# ------------------------------------------------------------------ cross-generator


def plot_cross_generator(report: Report, artifacts: Artifacts) -> Figure:
    matrix = report["cross_generator"]
    rows = [r for r in matrix["rows"] if "error" not in matrix["rows"][r]]
    columns = matrix["columns"]
    figure, axes = _figure(max(7, 0.9 * len(columns) + 3), 0.9 * len(rows) + 2.2, ncols=2)
    for ax, metric, title in (
        (axes[0][0], "ap", "AP"),
        (axes[0][1], "tpr_at_fpr_5", "TPR at 5 % FPR"),
    ):
        values = np.full((len(rows), len(columns)), np.nan)
        for r, row in enumerate(rows):
            for c, column in enumerate(columns):
                cell = matrix["rows"][row].get(column)
                if isinstance(cell, dict) and cell.get(metric) is not None:
                    values[r, c] = cell[metric]
        image = ax.imshow(values, vmin=0, vmax=1, cmap="viridis", aspect="auto")
        for r in range(len(rows)):
            for c in range(len(columns)):
                if np.isfinite(values[r, c]):
                    ax.text(
                        c,
                        r,
                        f"{values[r, c]:.2f}",
                        ha="center",
                        va="center",
                        fontsize=7,
                        color="white" if values[r, c] < 0.6 else "black",
                        fontweight="bold" if rows[r] == columns[c] else "normal",
                    )
        ax.set_xticks(range(len(columns)), columns, rotation=60, ha="right", fontsize=8)
        ax.set_yticks(range(len(rows)), rows, fontsize=8)
        ax.set_xlabel("tested on")
        ax.set_ylabel("trained on")
        ax.set_title(f"{title}: {matrix['detector']} trained on one family")
        figure.colorbar(image, ax=ax, shrink=0.8)
    return figure


# ------------------------------------------------------------------ robustness


def plot_robustness(report: Report, artifacts: Artifacts) -> Figure:
    sweeps = report["robustness"]["sweeps"]
    names = list(sweeps)
    ncols = min(3, len(names))
    nrows = (len(names) + ncols - 1) // ncols
    figure, axes = _figure(4.6 * ncols, 3.6 * nrows, ncols=ncols, nrows=nrows)
    clean = report["robustness"]["clean"]
    for k, name in enumerate(names):
        ax = axes[k // ncols][k % ncols]
        sweep = sweeps[name]
        points = sweep["points"]
        categorical = any(isinstance(p["x"], str) for p in points)
        xs = list(range(len(points))) if categorical else [float(p["x"]) for p in points]
        for key, label, style in (
            ("ap", "AP", "-o"),
            ("tpr_at_fpr_5", "TPR at 5 % FPR", "--s"),
            ("fpr", "FPR at calibrated threshold", ":^"),
            ("tpr", "TPR at calibrated threshold", "-.v"),
        ):
            ys = [p[key] if p[key] is not None else np.nan for p in points]
            (line,) = ax.plot(xs, ys, style, label=label, markersize=4)
            if key in ("ap", "tpr_at_fpr_5"):
                lows = [p["ci"][key][0] if p["ci"].get(key) else np.nan for p in points]
                highs = [p["ci"][key][1] if p["ci"].get(key) else np.nan for p in points]
                ax.fill_between(xs, lows, highs, alpha=0.15, color=line.get_color())
        ax.axhline(clean["ap"], color="grey", linewidth=0.7, linestyle="--", label="AP, clean")
        ax.axhline(report["target_fpr"], color="crimson", linewidth=0.7, linestyle=":")
        if categorical:
            ax.set_xticks(xs, [str(p["x"]) for p in points], fontsize=8)
        if sweep.get("reverse_axis"):
            ax.invert_xaxis()
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel(sweep["axis"])
        ax.set_title(name)
        ax.grid(alpha=0.3)
        if k == 0:
            ax.legend(fontsize=7, loc="lower left")
    for k in range(len(names), nrows * ncols):
        axes[k // ncols][k % ncols].set_visible(False)
    return figure


# ------------------------------------------------------------------ bias


def plot_bias(report: Report, artifacts: Artifacts) -> Figure:
    bias = report["bias"]
    variables = bias["variables"]
    groups = sorted({g for v in variables.values() for g in v["groups"]})
    names = list(variables)
    values = np.array(
        [[variables[n]["groups"].get(g) or np.nan for g in groups] for n in names], dtype=float
    )
    debiased = bias.get("debiased")
    ncols = 2 if debiased else 1
    figure, axes = _figure(6 + 5 * (ncols - 1), 0.32 * len(names) + 2.5, ncols=ncols)
    ax = axes[0][0]
    image = ax.imshow(values, vmin=0.5, vmax=1.0, cmap="magma_r", aspect="auto")
    for r in range(len(names)):
        for c in range(len(groups)):
            if np.isfinite(values[r, c]) and values[r, c] > bias["threshold"]:
                ax.text(
                    c, r, f"{values[r, c]:.2f}", ha="center", va="center", fontsize=7, color="white"
                )
    ax.set_xticks(range(len(groups)), groups, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.set_title(f"Storage variables alone: AUC per group (flag > {bias['threshold']})")
    figure.colorbar(image, ax=ax, shrink=0.8)
    if debiased:
        ax = axes[0][1]
        shown = [g for g in report["groups"] if g in debiased["groups"]]
        y = np.arange(len(shown))
        original = [report["groups"][g]["ap"] for g in shown]
        copy = [debiased["groups"][g]["ap"] for g in shown]
        ax.barh(y - 0.2, original, height=0.4, label="original files")
        ax.barh(y + 0.2, copy, height=0.4, label="debiased copy")
        ax.set_yticks(y, shown, fontsize=8)
        ax.invert_yaxis()
        ax.set_xlim(0, 1)
        ax.set_xlabel("AP")
        ax.set_title("AP on the original vs the debiased copy")
        ax.legend(fontsize=8, loc="lower right")
    return figure


# ------------------------------------------------------------------ analysis


def plot_spectra_2d(report: Report, artifacts: Artifacts) -> Figure:
    scopes = artifacts["analysis"]["spectra"]
    reference_name = report["analysis"]["spectra"]["reference"]
    reference = scopes[reference_name]
    names = [reference_name] + [n for n in scopes if n.startswith("fake/")]
    ncols = min(4, len(names))
    nrows = (len(names) + ncols - 1) // ncols
    figure, axes = _figure(3.2 * ncols, 3.1 * nrows, ncols=ncols, nrows=nrows)
    for k, name in enumerate(names):
        ax = axes[k // ncols][k % ncols]
        scope = scopes[name]
        if name == reference_name:
            image = ax.imshow(scope.mean_spectrum, cmap="viridis")
            ax.set_title(f"{name}: mean log |F| (n={scope.n})", fontsize=8)
        elif scope.shape == reference.shape:
            difference = scope.mean_spectrum - reference.mean_spectrum
            image = ax.imshow(difference, cmap="RdBu_r", vmin=-1.5, vmax=1.5)
            ax.set_title(f"{name} minus reals (n={scope.n})", fontsize=8)
        else:
            image = ax.imshow(scope.mean_spectrum, cmap="viridis")
            ax.set_title(f"{name}: mean log |F|, {scope.shape[0]}x{scope.shape[1]}", fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
        figure.colorbar(image, ax=ax, shrink=0.7)
    for k in range(len(names), nrows * ncols):
        axes[k // ncols][k % ncols].set_visible(False)
    return figure


def plot_spectra_profiles(report: Report, artifacts: Artifacts) -> Figure:
    scopes = artifacts["analysis"]["spectra"]
    figure, axes = _figure(11, 4.4, ncols=2)
    names = list(scopes)
    reference = scopes[report["analysis"]["spectra"]["reference"]]
    for name, color in zip(names, _colors(len(names)), strict=True):
        scope = scopes[name]
        x = np.linspace(0, 1, scope.profile.size)
        style = "-" if name.startswith("fake/") else "--"
        axes[0][0].plot(x, scope.profile, style, color=color, label=name, linewidth=1.2)
        if scope.shape == reference.shape and name.startswith("fake/"):
            axes[0][1].plot(x, scope.profile - reference.profile, color=color, label=name)
    axes[0][0].set_title("Azimuthal mean log spectrum")
    axes[0][1].set_title(f"Difference from {reference.name} (same size only)")
    axes[0][1].axhline(0, color="grey", linewidth=0.8)
    for ax in axes[0]:
        ax.set_xlabel("frequency (0 = DC, 1 = corner)")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=6, ncol=2)
    return figure


def plot_matching(report: Report, artifacts: Artifacts) -> Figure:
    matching = report["analysis"]["matching"]
    groups = [g for g, v in matching["groups"].items() if "detectors" in v]
    detectors = report["analysis"]["detectors"]
    example = artifacts["analysis"].get("matching_example")
    ncols = 2 if example else 1
    figure, axes = _figure(6 + 4 * (ncols - 1), 0.5 * len(detectors) + 2.8, ncols=ncols)
    ax = axes[0][0]
    values = np.array(
        [
            [matching["groups"][g]["detectors"][d]["auc_after"] or np.nan for g in groups]
            for d in detectors
        ]
    )
    image = ax.imshow(values, vmin=0, vmax=1, cmap="RdYlGn", aspect="auto")
    for r, d in enumerate(detectors):
        for c, g in enumerate(groups):
            cell = matching["groups"][g]["detectors"][d]
            ax.text(
                c,
                r,
                f"{cell['auc_before']:.2f}\n{cell['auc_after']:.2f}",
                ha="center",
                va="center",
                fontsize=6,
            )
    ax.set_xticks(range(len(groups)), groups, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(detectors)), detectors, fontsize=8)
    ax.set_title("ROC-AUC before (top) / after spectral equalisation", fontsize=9)
    figure.colorbar(image, ax=ax, shrink=0.8)
    if example:
        group, before, after = example
        ax = axes[0][1]
        ax.imshow(
            np.concatenate([before, np.full((before.shape[0], 4, 3), 255, np.uint8), after], 1)
        )
        ax.set_title(f"{group}: a fake before / after equalisation", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    return figure


def plot_color(report: Report, artifacts: Artifacts) -> Figure:
    table = report["analysis"]["color"]["detectors"]
    detectors = list(table)
    transforms = [k for k in next(iter(table.values())) if k != "auc_clean"]
    figure, axes = _figure(11, 0.45 * len(detectors) + 2.6, ncols=2)
    y = np.arange(len(detectors))
    height = 0.8 / (len(transforms) + 1)
    ax = axes[0][0]
    ax.barh(y, [table[d]["auc_clean"] or 0 for d in detectors], height=height, label="clean")
    for k, name in enumerate(transforms, start=1):
        ax.barh(
            y + k * height,
            [table[d][name]["auc"] or 0 for d in detectors],
            height=height,
            label=name,
        )
    ax.set_yticks(y + height * len(transforms) / 2, detectors, fontsize=8)
    ax.set_xlim(0, 1)
    ax.set_xlabel("ROC-AUC")
    ax.invert_yaxis()
    ax.legend(fontsize=7)
    ax.set_title("ROC-AUC on colour-transformed images (both classes)")
    ax = axes[0][1]
    for k, name in enumerate(transforms):
        ax.barh(
            y + k * height,
            [table[d][name]["mean_change_fake"] or 0 for d in detectors],
            height=height,
            label=name,
        )
    ax.axvline(0, color="grey", linewidth=0.8)
    ax.set_yticks(y + height * (len(transforms) - 1) / 2, detectors, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("mean score change on fakes")
    ax.legend(fontsize=7)
    ax.set_title("Score change of fakes (negative: look more real)")
    return figure


def plot_relevance(report: Report, artifacts: Artifacts) -> Figure:
    relevance = artifacts["analysis"]["relevance"]
    table = report["analysis"]["relevance"]["detectors"]
    names = list(relevance)
    figure, axes = _figure(11, 3.6 * len(names), ncols=2, nrows=len(names))
    for r, name in enumerate(names):
        values = relevance[name]
        ordered = np.sort(values)[::-1]
        ax = axes[r][0]
        ax.plot(np.arange(1, ordered.size + 1), ordered, color="navy")
        ax.axhline(0, color="grey", linewidth=0.8)
        ax.set_xscale("log")
        ax.set_xlabel("channel rank")
        ax.set_ylabel("first-order logit drop on fakes")
        ax.set_title(
            f"{name}: {table[name]['layer']} ({table[name]['n_channels']} channels)", fontsize=9
        )
        ax = axes[r][1]
        top = table[name]["top_channels"]
        x = np.arange(len(top))
        ax.bar(x - 0.27, [c["relevance_fake"] for c in top], width=0.27, label="estimate, fakes")
        ax.bar(x, [c["exact_drop_fake"] for c in top], width=0.27, label="exact (zeroed)")
        ax.bar(
            x + 0.27,
            [c["relevance_fake_grey"] for c in top],
            width=0.27,
            label="estimate, grey fakes",
        )
        ax.set_xticks(x, [str(c["channel"]) for c in top], fontsize=7)
        ax.set_xlabel("channel")
        ax.set_title("Most fake-relevant channels", fontsize=9)
        ax.legend(fontsize=7)
    return figure


def plot_shift(report: Report, artifacts: Artifacts) -> Figure:
    table = report["analysis"]["shift"]["detectors"]
    figure, axes = _figure(11, 4.2, ncols=2)
    for name, color in zip(table, _colors(len(table)), strict=True):
        per_shift = table[name]["per_shift"]
        for kind, marker in (("horizontal", "o"), ("diagonal", "s")):
            points = [
                s
                for s in per_shift
                if (kind == "horizontal" and s["dy"] == 0)
                or (kind == "diagonal" and s["dy"] == s["dx"])
            ]
            xs = [max(s["dy"], s["dx"]) for s in points]
            style = "-" if kind == "horizontal" else "--"
            axes[0][0].plot(
                xs,
                [s["flip_rate"] for s in points],
                style + marker,
                color=color,
                markersize=3,
                label=f"{name} ({kind})",
            )
            axes[0][1].plot(
                xs,
                [s["mean_abs_change"] for s in points],
                style + marker,
                color=color,
                markersize=3,
            )
    axes[0][0].set_title("Verdict flip rate vs shift")
    axes[0][1].set_title("Mean |score change| vs shift")
    for ax in axes[0]:
        ax.set_xlabel("shift (pixels)")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=6)
    return figure


def plot_adversarial(report: Report, artifacts: Artifacts) -> Figure:
    section = report["analysis"]["adversarial"]
    attacked = {k: v for k, v in section["attacked"].items() if "attacks" in v}
    names = list(attacked)
    figure, axes = _figure(11, 3.8 * len(names), ncols=2, nrows=len(names))
    for r, name in enumerate(names):
        entry = attacked[name]
        ax = axes[r][0]
        for method, style in (("fgsm", "--"), ("pgd", "-")):
            per_eps = entry["attacks"][method]
            eps = [int(e) for e in per_eps]
            for detector, color in zip(entry["clean"], _colors(len(entry["clean"])), strict=True):
                ys = [entry["clean"][detector]["tpr_at_threshold"]] + [
                    per_eps[str(e)][detector]["tpr_at_threshold"] for e in eps
                ]
                label = f"{method}: {detector}" + ("" if detector == name else " (transfer)")
                ax.plot(
                    [0, *eps],
                    ys,
                    style + "o",
                    color=color,
                    markersize=3,
                    label=label,
                    linewidth=2 if detector == name else 1,
                )
        ax.set_xlabel("epsilon (x/255)")
        ax.set_ylabel("fakes detected (TPR at threshold)")
        ax.set_ylim(-0.02, 1.02)
        ax.set_title(f"Attacking {name}", fontsize=9)
        ax.legend(fontsize=6)
        ax.grid(alpha=0.3)
        ax = axes[r][1]
        for method, style in (("fgsm", "--o"), ("pgd", "-s")):
            defense = entry["spectral_defense"][method]
            if "per_epsilon" not in defense:
                continue
            eps = [int(e) for e in defense["per_epsilon"]]
            rates = [defense["per_epsilon"][str(e)]["detection_rate"] for e in eps]
            ax.plot(
                eps,
                rates,
                style,
                label=f"{method} (false alarms {defense['false_alarm_rate']:.2f})",
            )
        ax.set_xlabel("epsilon (x/255)")
        ax.set_ylabel("detection rate")
        ax.set_ylim(-0.02, 1.02)
        ax.set_title("SpectralDefense: attacked inputs detected (held-out photos)", fontsize=9)
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    return figure


# ------------------------------------------------------------------ registry


@dataclass(frozen=True)
class PlotSpec:
    id: str
    title: str
    section: str
    available: Callable[[Report, Artifacts], bool]
    draw: Callable[[Report, Artifacts], Figure]


def _has(*path: str) -> Callable[[Report, Artifacts], bool]:
    def check(report: Report, artifacts: Artifacts) -> bool:
        node: Any = report
        for key in path:
            if not isinstance(node, dict) or key not in node:
                return False
            node = node[key]
        return bool(node)

    return check


def _has_artifact(key: str) -> Callable[[Report, Artifacts], bool]:
    def check(report: Report, artifacts: Artifacts) -> bool:
        return bool(artifacts.get("analysis", {}).get(key))

    return check


def _both(*checks: Callable[[Report, Artifacts], bool]) -> Callable[[Report, Artifacts], bool]:
    return lambda report, artifacts: all(check(report, artifacts) for check in checks)


def _has_scores(report: Report, artifacts: Artifacts) -> bool:
    labels = artifacts.get("labels")
    return labels is not None and len(set(np.asarray(labels).tolist())) == 2


PLOTS: tuple[PlotSpec, ...] = (
    PlotSpec("roc", "ROC curves", "metrics", _has_scores, plot_roc),
    PlotSpec("pr", "Precision-recall curves", "metrics", _has_scores, plot_pr),
    PlotSpec("reliability", "Calibration", "metrics", _has_scores, plot_reliability),
    PlotSpec("scores", "Scores per group", "metrics", _has_scores, plot_scores_by_group),
    PlotSpec("bias", "Bias audit", "bias", _has("bias", "variables"), plot_bias),
    PlotSpec(
        "cross_generator",
        "Cross-generator matrix",
        "cross_generator",
        _has("cross_generator", "rows"),
        plot_cross_generator,
    ),
    PlotSpec(
        "robustness",
        "Robustness curves",
        "robustness",
        _has("robustness", "sweeps"),
        plot_robustness,
    ),
    PlotSpec("spectra_2d", "Mean spectra", "analysis", _has_artifact("spectra"), plot_spectra_2d),
    PlotSpec(
        "spectra_profiles",
        "Azimuthal spectra",
        "analysis",
        _has_artifact("spectra"),
        plot_spectra_profiles,
    ),
    PlotSpec(
        "matching",
        "Spectral matching",
        "analysis",
        _has("analysis", "matching", "groups"),
        plot_matching,
    ),
    PlotSpec(
        "color",
        "Colour sensitivity",
        "analysis",
        _has("analysis", "color", "detectors"),
        plot_color,
    ),
    PlotSpec(
        "relevance", "Channel relevance", "analysis", _has_artifact("relevance"), plot_relevance
    ),
    PlotSpec(
        "shift", "Shift consistency", "analysis", _has("analysis", "shift", "detectors"), plot_shift
    ),
    PlotSpec(
        "adversarial",
        "Adversarial attacks",
        "analysis",
        _both(_has_artifact("adversarial"), _has("analysis", "adversarial", "attacked")),
        plot_adversarial,
    ),
)


def available_plots(report: Report, artifacts: Artifacts) -> list[PlotSpec]:
    return [spec for spec in PLOTS if spec.available(report, artifacts)]


def render_plots(report: Report, artifacts: Artifacts) -> dict[str, bytes]:
    """{plot id: PNG bytes} for every plot the report has data for."""
    return {
        spec.id: to_png(spec.draw(report, artifacts)) for spec in available_plots(report, artifacts)
    }
