"""Splice donors: discovery reads them, and grouped splits keep them beside their splices."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from fakescope.cli.main import app
from fakescope.data import audit
from fakescope.data.layout import LabelledItem, discover_dataset, linked_photo_groups
from fakescope.data.manifest import ManifestRow, append_manifest
from fakescope.pipeline.training import split_holdout
from tests.conftest import natural_like, upsampled_fake

runner = CliRunner()


def _save(path: Path, pixels: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)


def _item(photo: str, label: int = 0, related: tuple[str, ...] = ()) -> LabelledItem:
    return LabelledItem(Path(f"{photo}.png"), label, "g", photo, related)


def test_linked_groups_merge_transitively_and_ignore_order():
    items = [
        _item("pc", 1, ("pb",)),  # splice on pc with a donor from pb
        _item("pa"),
        _item("pb"),
        _item("pd", 1, ("pa",)),
        _item("pa", 1, ("pb",)),  # ... which links pa, pb, pc and pd into one group
        _item("pe"),
        _item("pf", 1, ("px",)),  # a donor with no image of its own still links nothing else
    ]
    keys = linked_photo_groups(items)
    assert keys == ["pa", "pa", "pa", "pa", "pa", "pe", "pf"]
    assert linked_photo_groups(items[::-1]) == keys[::-1]
    # Without related photos the key is the photo id itself: splits stay as they were.
    assert linked_photo_groups([_item("b"), _item("a")]) == ["b", "a"]


def _splice_dataset(root: Path, *, manifest: bool) -> dict[str, str]:
    """Photos p0..p11 with two real tiles each and one fake each: splices on p0, p2, p4, p6
    with donors p1, p3, p5, p7 (JSON as ``data forge`` writes it), generated fakes for the
    rest. Returns splice file name -> donor photo."""
    rng = np.random.default_rng(0)
    donors: dict[str, str] = {}
    rows: list[ManifestRow] = []
    for photo in range(12):
        for y in (0, 32):
            _save(root / "real" / f"p{photo}_{y}_0.png", natural_like(rng, 24))
        if photo in (0, 2, 4, 6):
            name = f"p{photo}_{photo}"
            _save(root / "fake" / "splice" / f"{name}.png", natural_like(rng, 24))
            donor = f"p{photo + 1}"
            meta_rel = f"meta/splice/{name}.json" if not manifest else f"meta/other/{name}.json"
            meta = {"kind": "splice", "photo_id": f"p{photo}", "donor": {"photo_id": donor}}
            (root / meta_rel).parent.mkdir(parents=True, exist_ok=True)
            (root / meta_rel).write_text(json.dumps(meta))
            donors[f"{name}.png"] = donor
            rows.append(
                ManifestRow(
                    f"fake/splice/{name}.png",
                    1,
                    "splice",
                    f"p{photo}",
                    "",
                    "",
                    "",
                    24,
                    24,
                    "PNG",
                    params=meta_rel,
                )
            )
        elif photo not in (1, 3, 5, 7):
            _save(root / "fake" / "gen" / f"p{photo}_0_0.png", upsampled_fake(rng, 24))
    if manifest:
        append_manifest(root, rows)
    return donors


@pytest.mark.parametrize("manifest", [False, True])
def test_discovery_reads_each_splices_donor(tmp_path: Path, manifest: bool):
    donors = _splice_dataset(tmp_path, manifest=manifest)
    items = discover_dataset(tmp_path)
    related = {item.path.name: item.related_photo_ids for item in items if item.related_photo_ids}
    if manifest:
        assert related == {name: (donor,) for name, donor in donors.items()}
    else:
        # "p0_0.png" is no tile name: without a manifest its own photo is its path, and the
        # JSON's target photo links it to p0's tiles as well.
        expected = {name: (donor, name.split("_")[0]) for name, donor in donors.items()}
        assert related == {name: tuple(sorted(ids)) for name, ids in expected.items()}


def test_broken_or_foreign_meta_names_no_donor(tmp_path: Path):
    _splice_dataset(tmp_path, manifest=True)
    (tmp_path / "meta" / "other" / "p0_0.json").write_text('{"donor": ')  # cut short
    (tmp_path / "meta" / "other" / "p2_2.json").write_text('{"donor": {"photo_id": "p2"}}')
    (tmp_path / "meta" / "gen").mkdir()
    (tmp_path / "meta" / "gen" / "p8_0_0.json").write_text('{"generator": "gen"}')
    related = {item.path.name: item.related_photo_ids for item in discover_dataset(tmp_path)}
    assert related["p0_0.png"] == () and related["p8_0_0.png"] == ()
    assert related["p2_2.png"] == ()  # its own photo is no extra link
    assert related["p4_4.png"] == ("p5",)


def _sides_by_photo(items: list[LabelledItem], train: np.ndarray, held: np.ndarray) -> None:
    """No photo, own or carried, on both sides."""
    sides = [
        {photo for i in part for photo in (items[i].photo_id, *items[i].related_photo_ids)}
        for part in (train, held)
    ]
    assert sides[0].isdisjoint(sides[1])


def test_split_keeps_a_splices_donor_on_its_side(tmp_path: Path):
    donors = _splice_dataset(tmp_path, manifest=False)
    items = discover_dataset(tmp_path)
    apart_without_donors = 0
    for seed in range(8):
        train, held = split_holdout(items, holdout=0.3, seed=seed)
        _sides_by_photo(items, train, held)
        side = {i: part for part in (set(train.tolist()), set(held.tolist())) for i in part}
        for index, item in enumerate(items):
            if item.path.name in donors:
                donor_reals = [
                    j
                    for j, other in enumerate(items)
                    if other.label == 0 and other.photo_id == donors[item.path.name]
                ]
                assert len(donor_reals) == 2
                assert all(side[j] is side[index] for j in donor_reals)
        # The same items without their donors: the split is free to separate them, and does.
        bare = [LabelledItem(it.path, it.label, it.group, it.photo_id) for it in items]
        train, held = split_holdout(bare, holdout=0.3, seed=seed)
        held_photos = {bare[i].photo_id for i in held}
        apart_without_donors += any(
            (f"p{p}" in held_photos) != (f"p{p + 1}" in held_photos) for p in (0, 2, 4, 6)
        )
    assert apart_without_donors > 0  # so the test above is not passing by chance


def test_audit_folds_group_a_splice_with_its_donor(tmp_path: Path, monkeypatch):
    donors = _splice_dataset(tmp_path, manifest=True)
    seen: list[list[str]] = []
    original = audit._folds

    def spy(labels: np.ndarray, photo_ids, seed: int, n_folds: int):
        seen.append(list(photo_ids))
        return original(labels, photo_ids, seed, n_folds)

    monkeypatch.setattr(audit, "_folds", spy)
    report = audit.audit_dataset(tmp_path)
    assert report.records and seen
    keys = {record.path: key for record, key in zip(report.records, seen[0], strict=True)}
    for name, donor in donors.items():
        splice_key = keys[f"fake/splice/{name}"]
        assert keys[f"real/{donor}_0_0.png"] == splice_key == keys[f"real/{donor}_32_0.png"]
    assert keys["real/p8_0_0.png"] == "p8"


def test_forged_and_perturbed_splices_keep_their_donors(tmp_path: Path):
    pytest.importorskip("cv2")
    rng = np.random.default_rng(3)
    photos = tmp_path / "photos"
    for name in ("pa", "pb", "pc"):
        _save(photos / f"{name}_0_0.png", natural_like(rng, 48))
    forged = tmp_path / "forged"
    result = runner.invoke(
        app,
        ["data", "forge", str(forged), "--kind", "splice", "--from", str(photos), "--no-progress"],
    )
    assert result.exit_code == 0, result.output
    expected = {
        path.with_suffix(".png").name: (json.loads(path.read_text())["donor"]["photo_id"],)
        for path in (forged / "meta" / "splice").glob("*.json")
    }
    assert len(expected) == 3
    perturbed = tmp_path / "perturbed"
    result = runner.invoke(
        app, ["data", "perturb", "jpeg:90", str(forged), str(perturbed), "--no-progress"]
    )
    assert result.exit_code == 0, result.output
    for root, suffix in ((forged, ".png"), (perturbed, ".jpg")):
        related = {
            item.path.with_suffix(".png").name: item.related_photo_ids
            for item in discover_dataset(root)
            if item.label == 1
        }
        assert related == expected, root
        assert all(path.suffix == suffix for path in (root / "fake" / "splice").iterdir())
