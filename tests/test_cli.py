"""The command line end to end: exit codes, output shapes, bad files in a batch."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from fakescope.cli.main import app
from tests.conftest import natural_like, upsampled_fake

runner = CliRunner()
REQUIRED_KEYS = {"path", "sha256", "score", "verdict", "detectors", "evidence", "error"}


@pytest.fixture
def scan_folder(tmp_path: Path) -> Path:
    """Two good images in nested folders, plus every kind of bad file."""
    rng = np.random.default_rng(3)
    nested = tmp_path / "inbox" / "nested"
    nested.mkdir(parents=True)
    Image.fromarray(natural_like(rng)).save(tmp_path / "inbox" / "photo.jpg", quality=92)
    Image.fromarray(upsampled_fake(rng)).save(nested / "generated.png")
    Image.fromarray(natural_like(rng)).save(nested / "camera.png")
    good = (tmp_path / "inbox" / "photo.jpg").read_bytes()
    (tmp_path / "inbox" / "truncated.jpg").write_bytes(good[: len(good) // 2])
    (tmp_path / "inbox" / "empty.png").write_bytes(b"")
    (tmp_path / "inbox" / "text.jpg").write_text("this is not an image")
    (tmp_path / "inbox" / "notes.txt").write_text("ignored while walking: not an image extension")
    return tmp_path / "inbox"


def _jsonl(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_scan_jsonl_streams_every_file_and_survives_bad_ones(scan_folder, trained_model_dir):
    result = runner.invoke(
        app, ["scan", str(scan_folder), "--model", str(trained_model_dir), "--format", "jsonl"]
    )
    assert result.exit_code == 0, result.output
    rows = _jsonl(result.stdout)
    by_name = {Path(row["path"]).name: row for row in rows}
    assert set(by_name) == {
        "photo.jpg",
        "camera.png",
        "generated.png",
        "truncated.jpg",
        "empty.png",
        "text.jpg",
    }
    for row in rows:
        assert set(row) >= REQUIRED_KEYS
    assert by_name["generated.png"]["verdict"] == "fake"
    assert by_name["camera.png"]["verdict"] == "real"
    assert by_name["photo.jpg"]["evidence"]["jpeg"]["quality"] == 92
    assert set(by_name["generated.png"]["detectors"]) == {"spectral"}
    assert 0.0 <= by_name["generated.png"]["score"] <= 1.0
    bad = ("truncated.jpg", "empty.png", "text.jpg")
    kinds = {name: by_name[name]["error_kind"] for name in bad}
    assert kinds == {
        "truncated.jpg": "truncated_image",
        "empty.png": "empty_file",
        "text.jpg": "unsupported_format",
    }
    for name in kinds:
        assert by_name[name]["score"] is None and by_name[name]["verdict"] is None


def test_scan_reads_paths_from_stdin_and_writes_csv(scan_folder, trained_model_dir, tmp_path):
    out = tmp_path / "results.csv"
    paths = f"{scan_folder / 'photo.jpg'}\n{scan_folder / 'missing.png'}\n"
    result = runner.invoke(
        app,
        ["scan", "-", "-m", str(trained_model_dir), "-f", "csv", "--out", str(out)],
        input=paths,
    )
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert [Path(r["path"]).name for r in rows] == ["photo.jpg", "missing.png"]
    assert json.loads(rows[0]["detectors"])["spectral"] == pytest.approx(float(rows[0]["score"]))
    assert float(rows[0]["score_spectral"]) == pytest.approx(float(rows[0]["score"]))
    assert rows[1]["score_spectral"] == ""  # an error row has no scores
    assert rows[1]["error_kind"] == "unreadable"


def test_scan_table_output(scan_folder, trained_model_dir):
    result = runner.invoke(app, ["scan", str(scan_folder), "-m", str(trained_model_dir)])
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["verdict", "score", "path"]
    assert len(lines) == 7
    assert any(line.startswith("error") and "truncated.jpg" in line for line in lines)


@pytest.mark.parametrize(
    "args",
    [
        ["scan"],  # no paths
        ["scan", ".", "--model", "no-such-model"],
        ["scan", ".", "--format", "xml"],
        ["train", "no-such-detector", "--data", ".", "--out", "x"],
        ["train", "spectral", "--data", "/no/such/folder", "--out", "x"],
        ["train", "spectral", "--data", ".", "--out", "x", "-p", "classifier=forest"],
        ["train", "spectral", "--data", ".", "--out", "x", "-p", "colour=blue"],
        ["train", "spectral", "--data", ".", "--out", "pyproject.toml"],
        ["train", "spectral", "--data", "tests", "--out", "x"],  # no real/ or fake/ inside
        ["eval", "--model", "no-such-model", "--data", "."],
        ["frobnicate"],
    ],
)
def test_usage_errors_exit_2(args):
    assert runner.invoke(app, args).exit_code == 2


def test_train_then_eval_json(dataset_dir, tmp_path):
    model_dir = tmp_path / "model"
    result = runner.invoke(
        app,
        ["train", "spectral", "--data", str(dataset_dir), "--out", str(model_dir),
         "-p", "classifier=svm", "-p", "n_features=64", "--target-fpr", "0.1"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    config = json.loads((model_dir / "config.json").read_text())
    assert config["params"]["classifier"] == "svm" and config["params"]["n_features"] == 64
    assert json.loads((model_dir / "calibration.json").read_text())["target_fpr"] == 0.1
    result = runner.invoke(
        app, ["eval", "--model", str(model_dir), "--data", str(dataset_dir), "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    for block in [report["overall"], *report["groups"].values()]:
        for key in ("ap", "roc_auc", "accuracy", "tpr_at_fpr_1", "tpr_at_fpr_5"):
            assert 0.0 <= block[key] <= 1.0
    assert set(report["groups"]) == {"gen0", "gen1"}
    assert report["threshold"] == pytest.approx(
        json.loads((model_dir / "calibration.json").read_text())["threshold"]
    )


def test_detectors_command_lists_registry():
    result = runner.invoke(app, ["detectors"])
    assert result.exit_code == 0
    names = [line.split("\t")[0] for line in result.stdout.splitlines()]
    assert {"spectral", "fusion", "model:spectral-default"} <= set(names)


def test_console_script_with_bundled_default_model(scan_folder):
    """As a user runs it: the installed entry point, the bundled model, no --model."""
    env = {**os.environ, "COLUMNS": "200"}
    completed = subprocess.run(
        [sys.executable, "-m", "fakescope", "scan", str(scan_folder), "--format", "jsonl"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    rows = _jsonl(completed.stdout)
    assert len(rows) == 6
    assert sum(row["error"] is None for row in rows) == 3
    assert "6 files" in completed.stderr


def test_scan_limits_turn_oversized_files_into_error_rows(scan_folder, trained_model_dir):
    photo = str(scan_folder / "photo.jpg")
    for option, kind in (("--max-pixels", "image_too_large"), ("--max-bytes", "file_too_large")):
        result = runner.invoke(
            app, ["scan", photo, "-m", str(trained_model_dir), "-f", "jsonl", option, "100"]
        )
        assert result.exit_code == 0
        (row,) = _jsonl(result.stdout)
        assert row["error_kind"] == kind and row["score"] is None
