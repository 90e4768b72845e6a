"""False alarms on a user's own untouched photos: rates, thresholds, bad files, the CLI."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fakescope.evaluation.false_alarms import false_alarm_report, threshold_for_rate
from fakescope.io.discover import iter_input_files
from tests.conftest import BrightLocalizer


def test_threshold_for_rate_flags_at_most_that_share() -> None:
    scores = np.array([0.2, 0.95, 0.5, 0.99, 0.7, 0.97, 0.3, 0.1, 0.6, 0.4])
    for rate in (0.0, 0.1, 0.2, 0.25, 0.5, 0.9):
        threshold = threshold_for_rate(scores, rate)
        flagged = int((scores >= threshold).sum())
        assert flagged <= np.floor(rate * len(scores) + 1e-9)
        # As low as it can be: one step lower flags one image too many.
        assert (scores >= threshold - 1e-6).sum() == flagged + 1
    assert threshold_for_rate(scores, 0.1) == pytest.approx(0.970001)
    assert threshold_for_rate(scores, 1.0) == 0.0
    with pytest.raises(ValueError):
        threshold_for_rate(scores, 1.5)


def _save(folder: Path, name: str, brightness: int, size: int = 48) -> None:
    pixels = np.full((size, size, 3), 40, np.uint8)
    pixels[: size // 4, : size // 4] = brightness  # a bright corner raises the image score
    Image.fromarray(pixels).save(folder / name)


def test_report_counts_flagged_images_and_keeps_going_past_bad_files(tmp_path: Path) -> None:
    for index, brightness in enumerate((60, 90, 200, 250)):
        _save(tmp_path, f"photo{index}.png", brightness)
    _save(tmp_path, "tiny.png", 255, size=8)  # too small for the localizer
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    localizer = BrightLocalizer()  # thresholds 0.5: a corner of 200 or more is flagged
    report = false_alarm_report(localizer, iter_input_files([str(tmp_path)]), name="bright")
    assert (report["n_images"], report["n_errors"], report["n_flagged"]) == (4, 2, 2)
    assert report["flagged_share"] == 0.5
    errors = {Path(row["path"]).name for row in report["images"] if "error" in row}
    assert errors == {"tiny.png", "broken.jpg"}
    threshold = report["image_threshold_for_rate"]["0.1"]
    scores = [row["score"] for row in report["images"] if "score" in row]
    assert sum(score >= threshold for score in scores) == 0  # 10 % of 4 images: none


def test_eval_pristine_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from typer.testing import CliRunner

    import fakescope.localizers as localizers
    from fakescope.cli.main import app

    monkeypatch.setattr(localizers, "_registry", localizers._registry.copy())
    localizers.register("test-bright", "tests.conftest:BrightLocalizer")
    model = BrightLocalizer().save(tmp_path / "bright")
    photos = tmp_path / "photos"
    photos.mkdir()
    for index, brightness in enumerate((60, 250, 240)):
        _save(photos, f"p{index}.png", brightness)
    out = tmp_path / "fa.json"
    result = CliRunner().invoke(
        app,
        ["eval", "--task", "localize", "--pristine", str(photos), "--localizer", str(model),
         "--out", str(out), "--no-progress"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "2 flagged" in " ".join(result.output.split())
    report = json.loads(out.read_text())
    assert report["n_flagged"] == 2 and report["task"] == "false-alarms"
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.png").write_text("not an image")
    result = CliRunner().invoke(
        app, ["eval", "--task", "localize", "--pristine", str(empty), "--localizer", str(model)]
    )
    assert result.exit_code == 2
