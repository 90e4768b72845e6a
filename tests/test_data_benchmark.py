"""`fakescope data benchmark`: a tiny benchmark end to end, its plan and its resumption.

``gather_real_photos`` is replaced by a stub returning small generated photos laid out like
the real sources cache, so neither apt nor the Debian wallpapers are needed. 64-px tiles,
two training steps per generator and a few images per family keep the build to seconds.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from fakescope.cli.data_benchmark import split_list
from fakescope.cli.main import app
from fakescope.data import sources
from fakescope.data.benchmark import (
    BenchmarkError,
    BenchmarkPlan,
    assign_roles,
    build_benchmark,
    check_samples,
    plan_photos,
    water_fill,
)
from fakescope.data.layout import discover_dataset, group_reals
from fakescope.data.manifest import read_manifest
from tests.conftest import natural_like

KINDS = ("splice", "copymove", "inpaint", "warp")
TINY = {
    "real_tiles": 60,
    "fakes_per_family": 4,
    "forgeries_per_kind": 3,
    "tile_size": 64,
    "train_steps": 2,
    "kinds": KINDS,
    "collapse_retries": 0,  # two steps cannot make a GAN: do not retrain it
}


def _photo(cache: Path, index: int, rng: np.random.Generator) -> sources.PhotoRecord:
    """A 192 x 256 "photo" (12 tiles of 64), JPEG or PNG like the real sources."""
    photo_id = f"test-photo{index}"
    fmt = "JPEG" if index % 3 else "PNG"
    pixels = natural_like(rng, 256)[:192]
    path = cache / "photos" / f"{photo_id}.{'jpg' if fmt == 'JPEG' else 'png'}"
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, format=fmt, **({"quality": 85} if fmt == "JPEG" else {}))
    return sources.PhotoRecord(
        photo_id=photo_id,
        scene="test-scene01" if index in (0, 1) else photo_id,  # one scene of two photos
        path=path.relative_to(cache).as_posix(),
        source="debian:test-wallpapers",
        source_version="1.0",
        original_path=f"usr/share/backgrounds/{path.name}",
        licence="CC0-1.0",
        author="A. Photographer",
        sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
        width=256,
        height=192,
        format=fmt,
        jpeg_quality=85 if fmt == "JPEG" else None,
    )


@pytest.fixture(scope="module")
def photo_cache(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list]:
    cache = tmp_path_factory.mktemp("sources")
    rng = np.random.default_rng(5)
    return cache, [_photo(cache, i, rng) for i in range(11)]


@pytest.fixture
def stub_sources(monkeypatch: pytest.MonkeyPatch, photo_cache: tuple[Path, list]) -> Path:
    cache, photos = photo_cache

    def gather(cache_dir: Path | None = None, **options: object) -> list[sources.PhotoRecord]:
        return list(photos)

    monkeypatch.setattr(sources, "gather_real_photos", gather)
    return cache


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, photo_cache: tuple[Path, list]) -> dict:
    """One tiny build, then a rerun of it; shared by the tests that only read them."""
    pytest.importorskip("torch")
    pytest.importorskip("cv2")
    cache, photos = photo_cache
    root = tmp_path_factory.mktemp("bench")
    out = root / "bench"
    patch = pytest.MonkeyPatch()
    patch.setattr(sources, "gather_real_photos", lambda *a, **k: list(photos))
    try:
        plan = BenchmarkPlan(**TINY)
        options = {"sources_dir": cache, "cache_dir": root / "generators"}
        first = build_benchmark(out, plan, **options)
        manifest_bytes = (out / "manifest.csv").read_bytes()
        second = build_benchmark(out, plan, **options)
    finally:
        patch.undo()
    return {
        "out": out,
        "plan": plan,
        "photos": photos,
        "first": first,
        "second": second,
        "manifest_bytes": manifest_bytes,
        "options": options,
    }


def test_counts_and_layout(built: dict) -> None:
    out: Path = built["out"]
    summary = built["first"].summary
    counts = summary["counts"]
    rows = read_manifest(out)
    assert counts["real_tiles"] >= TINY["real_tiles"]
    for family in ("ae-transposed", "ae-nearest", "ae-bilinear", "ae-pixelshuffle", "sr-gan"):
        assert counts["families"][family] == 4
        assert len(list((out / "fake" / family).glob("*.png"))) == 4
    assert counts["families"]["dcgan"] == 4
    assert len(list((out / "dcgan" / "1_fake").glob("*.png"))) == 4
    assert counts["matched_reals"]["dcgan"] == len(list((out / "dcgan" / "0_real").glob("*.png")))
    assert counts["control"]["processed-real"] == 4
    assert counts["forgeries"] == dict.fromkeys(KINDS, 3)
    for kind in KINDS:
        assert len(list((out / "masks" / kind).glob("*.png"))) == 3
    assert counts["real"] + counts["fake"] == len(rows)
    # Every listed image exists, nothing outside the manifest is an image of the dataset.
    assert {row.path for row in rows} == {
        item.path.relative_to(out).as_posix() for item in discover_dataset(out)
    }
    tiles = [row.sha256 for row in rows if row.group == "real"]
    assert len(set(tiles)) == len(tiles)  # (64-px tiles and crops may coincide: not checked)
    for name in ("benchmark.json", "README.md", "splits.csv", "photos.csv", "tiles.csv"):
        assert (out / name).is_file()
    assert json.loads((out / "benchmark.json").read_text())["counts"] == counts
    assert "Bias audit" in (out / "README.md").read_text()
    assert not (out / ".staging").exists()


def test_roles_keep_generators_off_their_inputs(built: dict) -> None:
    out: Path = built["out"]
    with open(out / "splits.csv", newline="", encoding="utf-8") as handle:
        splits = {row["photo_id"]: row for row in csv.DictReader(handle)}
    roles = {photo_id: row["role"] for photo_id, row in splits.items()}
    rows = read_manifest(out)
    assert {row.photo_id for row in rows} <= set(roles)  # every image has a role
    assert roles["test-photo0"] == roles["test-photo1"]  # one scene, one role
    for row in rows:
        role = roles[row.photo_id]
        if row.group == "dcgan":  # samples have no photo; their matched reals are unseen photos
            assert role == "generated" if row.label else role in ("source", "heldout")
        elif row.group == "real":
            assert row.path.startswith(f"real/{role}/")
        else:  # fakes, processed reals and forgeries are made of source photos only
            assert role == "source", row.path
    for meta in (out / "meta" / "ae-nearest").glob("*.json"):
        training = json.loads(meta.read_text())["training"]["train_photo_ids"]
        assert {roles[photo_id] for photo_id in training} == {"generator"}
    for meta in (out / "meta" / "splice").glob("*.json"):
        assert roles[json.loads(meta.read_text())["donor"]["photo_id"]] == "source"


def test_dcgan_is_paired_with_reals_of_its_size(built: dict) -> None:
    out: Path = built["out"]
    items = discover_dataset(out)
    reals, rule = group_reals(items, "dcgan")
    assert rule == "paired"
    sizes = {Image.open(items[i].path).size for i in reals}
    fakes = {Image.open(p).size for p in (out / "dcgan" / "1_fake").glob("*.png")}
    assert sizes == fakes == {(64, 64)}
    # The other families are compared with the shared reals, never with these crops.
    assert group_reals(items, "ae-nearest")[1] == "shared"


def test_audit_and_debiased_copy_are_reported(built: dict) -> None:
    summary = built["first"].summary
    audit = summary["audit"]
    assert audit is not None and set(audit["auc"]) >= {"format", "width", "file_size"}
    assert "dcgan" in audit["groups"] and "splice" in audit["groups"]
    assert audit["auc"]["format"]["overall"] == 0.5  # every image is a PNG
    assert (built["out"] / "audit.json").is_file()
    if audit["flagged"]:
        debias_dir = Path(summary["debias"]["dir"])
        assert summary["debiased_audit"] is not None
        assert (debias_dir / "audit.json").is_file() and (debias_dir / "debias.json").is_file()
    else:
        assert summary["debiased_audit"] is None


def test_rerun_skips_every_completed_step(built: dict) -> None:
    second = built["second"]
    assert [step.name for step in second.steps] == built["plan"].steps()
    assert all(step.skipped for step in second.steps)
    assert (built["out"] / "manifest.csv").read_bytes() == built["manifest_bytes"]
    assert second.summary["counts"] == built["first"].summary["counts"]


def test_an_interrupted_step_is_cleaned_and_rebuilt(built: dict, stub_sources: Path) -> None:
    out: Path = built["out"]
    state_path = out / "benchmark-state.json"
    state = json.loads(state_path.read_text())
    del state["steps"]["forge:warp"]  # as if the run died while forging warps
    state_path.write_text(json.dumps(state))
    (out / "fake" / "warp" / "stray.png").write_bytes(b"partial")
    result = build_benchmark(out, built["plan"], **built["options"])
    ran = [step.name for step in result.steps if not step.skipped]
    assert ran == ["forge:warp", "audit"]
    rows = read_manifest(out)
    assert Counter(row.group for row in rows if row.label == 1)["warp"] == 3
    assert (
        len(rows)
        == len(read_manifest(out))
        == built["first"].summary["counts"]["real"] + (built["first"].summary["counts"]["fake"])
    )
    assert not (out / "fake" / "warp" / "stray.png").exists()


def test_a_changed_count_rebuilds_only_its_steps(built: dict, stub_sources: Path) -> None:
    plan = BenchmarkPlan(**{**TINY, "forgeries_per_kind": 2})
    result = build_benchmark(built["out"], plan, **built["options"])
    ran = [step.name for step in result.steps if not step.skipped]
    assert ran == [*(f"forge:{kind}" for kind in KINDS), "audit"]
    assert result.summary["counts"]["forgeries"] == dict.fromkeys(KINDS, 2)
    for folder in ("fake/copymove", "masks/copymove", "masks/copymove-source", "meta/copymove"):
        assert len(list((built["out"] / folder).iterdir())) == 2, folder  # old ones removed


def test_other_settings_or_a_foreign_folder_are_refused(built: dict, tmp_path: Path) -> None:
    with pytest.raises(BenchmarkError, match="other settings"):
        build_benchmark(built["out"], BenchmarkPlan(**{**TINY, "seed": 1}), **built["options"])
    (tmp_path / "data" / "real").mkdir(parents=True)
    with pytest.raises(BenchmarkError, match="not a benchmark folder"):
        build_benchmark(tmp_path / "data", BenchmarkPlan(**TINY))


def test_plan_is_reproducible(photo_cache: tuple[Path, list]) -> None:
    _, photos = photo_cache
    plan = BenchmarkPlan(**TINY)
    first, again = plan_photos(photos, plan), plan_photos(photos, plan)
    assert first == again
    assert set(first.roles.values()) == {"generator", "source", "heldout"}
    other = plan_photos(photos, BenchmarkPlan(**{**TINY, "seed": 3}))
    assert other.roles != first.roles
    # 11 photos of 12 tiles: 5 per photo give 55 < 60, 6 give 66.
    assert first.max_tiles_per_photo == 6
    assert plan.steps()[:2] == ["photos", "tiles"] and plan.steps()[-1] == "audit"
    assert plan.steps().index("family:dcgan") > plan.steps().index("forge:warp")


def test_roles_follow_scenes_and_need_generator_and_source(photo_cache) -> None:
    _, photos = photo_cache
    for seed in range(4):
        roles = assign_roles(photos, seed, 0.2, 0.3)
        assert roles["test-photo0"] == roles["test-photo1"]
        scenes = {photo.scene: roles[photo.photo_id] for photo in photos}
        assert Counter(scenes.values()) == {"source": 5, "generator": 3, "heldout": 2}
    with pytest.raises(BenchmarkError, match="no photo for role"):
        assign_roles(photos[:1], 0, 0.2, 0.3)


def test_sample_check_finds_failed_gan_runs(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    same = natural_like(rng, 32)
    for index in range(3):
        Image.fromarray(same).save(tmp_path / f"same{index}.png")
        Image.fromarray(natural_like(rng, 32)).save(tmp_path / f"varied{index}.png")
        noise = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
        Image.fromarray(noise).save(tmp_path / f"noise{index}.png")
    alike = check_samples(sorted(tmp_path.glob("same*.png")))
    assert alike["spread"] == 0.0 and "alike" in alike["failed"]
    assert "noise" in check_samples(sorted(tmp_path.glob("noise*.png")))["failed"]
    assert check_samples(sorted(tmp_path.glob("varied*.png")))["failed"] == ""
    assert check_samples([tmp_path / "same0.png"])["failed"]


def test_water_fill() -> None:
    assert water_fill([10, 2, 50], 20) == 9  # 9 + 2 + 9
    assert water_fill([3, 3], 100) == 3  # unreachable: everything
    assert water_fill([], 5) == 0


def test_plan_validation() -> None:
    with pytest.raises(BenchmarkError, match="unknown generator family"):
        BenchmarkPlan(families=("processed-real",)).validate()
    with pytest.raises(BenchmarkError, match="unknown forgery kind"):
        BenchmarkPlan(kinds=("paint",)).validate()
    with pytest.raises(BenchmarkError, match="multiple of 16"):
        BenchmarkPlan(tile_size=72).validate()
    from fakescope.data.forge import FORGERIES

    assert BenchmarkPlan().kinds == tuple(FORGERIES)  # a kind registered later is included
    assert split_list(["splice,warp", " inpaint "]) == ("splice", "warp", "inpaint")


def test_cli_builds_and_reports(stub_sources: Path, tmp_path: Path) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("cv2")
    out = tmp_path / "cli-bench"
    arguments = ["data", "benchmark", str(out), "--real-tiles", "30", "--tile-size", "64"]
    arguments += ["--fakes-per-family", "2", "--forgeries-per-kind", "2", "--train-steps", "1"]
    # A kind that trains a model (inpaint-learned) runs when it is registered.
    learned = ["inpaint-learned"] if "inpaint-learned" in BenchmarkPlan().kinds else []
    arguments += ["--families", "ae-bilinear,dcgan", "--kinds", ",".join(["copymove", *learned])]
    arguments += ["--sources-dir", str(stub_sources), "--cache-dir", str(tmp_path / "gen")]
    result = CliRunner().invoke(app, arguments)
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "benchmark.json").read_text())
    assert summary["counts"]["families"] == {"ae-bilinear": 2, "dcgan": 2}
    assert summary["counts"]["forgeries"] == dict.fromkeys(["copymove", *learned], 2)
    if learned:  # the inpainter trained on generator photos only
        model = summary["steps"]["forge:inpaint-learned"]["model"]
        assert model["overlapping_photo_ids"] == [] and model["train_steps"] == 1
    assert "--families ae-bilinear,dcgan" in summary["command"]
    bad = CliRunner().invoke(app, ["data", "benchmark", str(tmp_path / "x"), "--kinds", "nope"])
    assert bad.exit_code == 2 and "unknown forgery kind" in bad.output
