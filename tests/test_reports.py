"""The HTML report: it exists, embeds every plot offline, and its numbers equal the JSON."""

from __future__ import annotations

import io
import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("matplotlib")
pytest.importorskip("jinja2")

from PIL import Image

from fakescope import __version__
from fakescope.analysis.suite import AnalysisConfig
from fakescope.evaluation.suite import SuiteConfig, run_suite
from fakescope.reports.writers import (
    finalise,
    format_number,
    pointer,
    resolve,
    write_html,
    write_json,
)
from tests.conftest import write_dataset


class ReportParser(HTMLParser):
    """Collects number spans, images, external references and the text of table cells."""

    def __init__(self) -> None:
        super().__init__()
        self.numbers: list[dict[str, str]] = []
        self.images: list[dict[str, str]] = []
        self.references: list[str] = []
        self.cell_text: list[str] = []
        self._in_number = 0
        self._in_cell = 0
        self._current: dict[str, str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {k: v or "" for k, v in attrs}
        if tag == "span" and "data-json" in attributes:
            self._current = {**attributes, "text": ""}
            self._in_number += 1
        elif tag == "img":
            self.images.append(attributes)
        if tag in ("td", "th"):
            self._in_cell += 1
        for key in ("src", "href"):
            if key in attributes and tag != "img":
                self.references.append(attributes[key])
        if tag in ("script", "link", "iframe", "object"):
            self.references.append(f"<{tag}>")

    def handle_endtag(self, tag: str) -> None:
        if tag == "span" and self._in_number and self._current is not None:
            self.numbers.append(self._current)
            self._current = None
            self._in_number -= 1
        if tag in ("td", "th"):
            self._in_cell -= 1

    def handle_data(self, data: str) -> None:
        if self._in_number and self._current is not None:
            self._current["text"] += data
        elif self._in_cell:
            self.cell_text.append(data)


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str, dict]:
    from fakescope.data.audit import debias_dataset
    from fakescope.pipeline.training import TrainingConfig, train_model

    base = tmp_path_factory.mktemp("report")
    data = write_dataset(base / "data", n_per_class=14, groups=2)
    debias_dataset(data, base / "data-debiased")
    spectral = train_model(data, TrainingConfig("spectral", {"n_features": 32}, target_fpr=0.1))
    spectral.save(base / "spectral")
    compare: tuple[str, ...] = ()
    try:
        import torch  # noqa: F401
    except ImportError:
        restore = None
    else:  # a tiny torch model: a differentiable detector for relevance and attacks
        from fakescope import detectors as registry

        restore = registry._registry.copy()
        registry.register("tiny-test", "tests.test_analysis:TinyDetector")
        tiny = train_model(data, TrainingConfig("tiny-test", {"epochs": 2}, target_fpr=0.1))
        tiny.save(base / "tiny")
        compare = (str(base / "tiny"),)
    config = SuiteConfig(
        data=data,
        model=str(base / "spectral"),
        seed=3,
        n_resamples=100,
        train_on=("all",),
        max_train_per_class=40,
        perturb=("jpeg:50", "blur:2"),
        debias=base / "data-debiased",
        analyze=True,
        analysis=AnalysisConfig(
            seed=3,
            per_group=6,
            reals=12,
            shift_images=8,
            max_shift=2,
            adversarial_images=6,
            epsilons=(2, 8),
            pgd_steps=2,
            top_k=3,
        ),
        compare=compare,
        cache_dir=None,
        command="fakescope eval --full (test)",
    )
    try:
        report, artifacts = run_suite(config)
    finally:
        if restore is not None:
            registry._registry = restore
    final = finalise(report, artifacts)
    json_path, html_path = base / "report.json", base / "report.html"
    write_json(final, json_path)
    plots = write_html(final, artifacts, html_path)
    assert html_path.is_file() and json_path.is_file()
    return json.loads(json_path.read_text()), html_path.read_text(encoding="utf-8"), plots


def test_html_embeds_every_plot_and_fetches_nothing(written):
    report, html, plots = written
    parser = ReportParser()
    parser.feed(html)
    listed = [entry["id"] for entry in report["plots"]]
    expected = {"roc", "pr", "reliability", "scores", "bias", "cross_generator", "robustness"}
    expected |= {"spectra_2d", "spectra_profiles", "matching", "color", "shift"}
    if report["compare"]:
        expected |= {"relevance", "adversarial"}
    assert set(listed) == expected
    embedded = {image["data-plot"]: image["src"] for image in parser.images}
    assert sorted(embedded) == sorted(listed)
    for name, source in embedded.items():
        assert source.startswith("data:image/png;base64,"), name
        import base64

        png = base64.b64decode(source.split(",", 1)[1])
        assert png == plots[name]
        with Image.open(io.BytesIO(png)) as image:
            assert image.format == "PNG" and min(image.size) > 200
    # Offline: no script, stylesheet or frame, no link or image outside the page.
    assert [ref for ref in parser.references if not ref.startswith("#")] == []
    assert "http://" not in html and "https://" not in html


def test_html_numbers_equal_the_json(written):
    report, html, _ = written
    parser = ReportParser()
    parser.feed(html)
    assert len(parser.numbers) > 200
    for number in parser.numbers:
        value = resolve(report, number["data-json"])
        assert format_number(value, number["data-format"]) == number["text"], number
    shown = {number["data-json"] for number in parser.numbers}
    for key in (
        "/overall/ap",
        "/overall/ci/ap/0",
        "/groups/gen0/roc_auc",
        "/groups/gen1/ece",
        "/bias/debiased/groups/gen0/ap",
        pointer("cross_generator", "rows", "gen0", "gen1", "ap"),
        "/robustness/sweeps/blur:2/points/0/fpr",
        "/analysis/color/n_fake",
        "/seed",
    ):
        assert key in shown, key
    # No decimal number in a table cell that does not come from the JSON: cell text left
    # after removing the JSON's own strings (paths, versions, audit evidence) has none.
    strings = sorted(_strings(report), key=len, reverse=True)

    def without_json_strings(text: str) -> str:
        for value in strings:
            text = text.replace(value, "")
        return text

    stray = [t for t in parser.cell_text if re.search(r"\d\.\d", without_json_strings(t))]
    assert stray == []


def _strings(node: Any) -> set[str]:
    if isinstance(node, str):
        return {node} if len(node) >= 3 else set()
    values = node.values() if isinstance(node, dict) else node if isinstance(node, list) else []
    return set().union(*(_strings(value) for value in values)) if values else set()


def test_report_states_data_model_seed_and_version(written):
    report, html, _ = written
    assert report["fakescope_version"] == __version__ and report["seed"] == 3
    assert report["model"]["name"] == "spectral" and len(report["model"]["fingerprint"]) == 64
    assert Path(report["data"]["path"]).name == "data"
    assert report["command"] == "fakescope eval --full (test)"
    for text in (report["model"]["source"], report["data"]["path"], f"version {__version__}"):
        assert text in html
    assert "oracle" in html  # the accuracy caveat is stated


def test_analysis_sections_say_what_is_not_differentiable(written):
    report, _, _ = written
    reasons = report["analysis"]["adversarial"]["not_differentiable"]
    assert reasons["spectral"].startswith("not differentiable here")
    if report["compare"]:
        label = report["compare"][0]["label"]
        attacked = report["analysis"]["adversarial"]["attacked"][label]
        assert set(attacked["attacks"]) == {"fgsm", "pgd"}
        assert set(attacked["attacks"]["pgd"]) == {"2", "8"}
        assert "per_epsilon" in attacked["spectral_defense"]["pgd"]
        assert report["analysis"]["relevance"]["detectors"][label]["top_channels"]
