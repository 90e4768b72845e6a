"""Bias audit and debiasing (Grommelt et al. 2024): flags, per-group numbers, errors, CLI."""

from __future__ import annotations

import io
import json
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from fakescope.cli.data_audit import quality_histogram
from fakescope.cli.main import app
from fakescope.data.audit import (
    DEBIAS_INFO_NAME,
    audit_dataset,
    chance_auc,
    debias_dataset,
    read_file_record,
)
from fakescope.data.layout import LabelledItem
from fakescope.data.manifest import read_manifest
from fakescope.errors import InputError
from fakescope.io.image import load_image
from tests.conftest import natural_like

runner = CliRunner()
N = 12  # per class and group: enough for out-of-fold rates, small enough to stay fast
GROUPS = ("gen0", "gen1")
STORAGE_LEAKS = {"format", "jpeg_quality", "width", "height", "pixels"}


def _jpeg_decoded(pixels: np.ndarray, quality: int) -> tuple[bytes, np.ndarray]:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=quality)
    buffer.seek(0)
    with Image.open(buffer) as decoded:
        return buffer.getvalue(), np.asarray(decoded.convert("RGB"))


def _photos(seed: int, n: int = N) -> list[np.ndarray]:
    """96x96 photo stand-ins of varied contrast, so file sizes vary across photos."""
    rng = np.random.default_rng(seed)
    return [
        np.clip(
            (natural_like(rng).astype(np.float64) - 128) * (0.2 + 0.1 * i) + 128, 0, 255
        ).astype(np.uint8)
        for i in range(n)
    ]


def write_biased(root: Path, seed: int = 0) -> Path:
    """Reals: JPEG q90 96x96. Fakes: PNG 64x80 (w x h), one folder per generator.

    Every fake shows the centre of its photo's decoded JPEG, placed so that the debias crops
    of a real and of its fakes hold the same pixels. File size depends on content (and on
    earlier compression), so sharing the content isolates what the test is about: format,
    quality and size, which the debias must neutralize.
    """
    (root / "real").mkdir(parents=True)
    for i, photo in enumerate(_photos(seed)):
        data, decoded = _jpeg_decoded(photo, 90)
        (root / "real" / f"p{i}_0.jpg").write_bytes(data)
        for group in GROUPS:
            folder = root / "fake" / group
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(decoded[8:88, 16:80]).save(folder / f"p{i}_{group}.png")
    return root


def write_unbiased(root: Path, seed: int = 0) -> Path:
    """Reals and fakes alike: JPEG q90 96x96, the same photos (see write_biased)."""
    (root / "real").mkdir(parents=True)
    for i, photo in enumerate(_photos(seed)):
        data, _ = _jpeg_decoded(photo, 90)
        (root / "real" / f"p{i}_0.jpg").write_bytes(data)
        for group in GROUPS:
            (root / "fake" / group).mkdir(parents=True, exist_ok=True)
            (root / "fake" / group / f"p{i}_{group}.jpg").write_bytes(data)
    return root


@pytest.fixture(scope="module")
def biased(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_biased(tmp_path_factory.mktemp("audit") / "biased")


@pytest.fixture(scope="module")
def debiased(biased: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("audit") / "debiased"
    debias_dataset(biased, out, seed=0)
    return out


def test_biased_set_flags_format_quality_and_size(biased: Path) -> None:
    report = audit_dataset(biased)
    assert report.n_real == N and report.n_fake == N * len(GROUPS) and not report.errors
    assert set(report.flagged) >= STORAGE_LEAKS
    for name in STORAGE_LEAKS:
        assert report.variable(name).overall.auc == pytest.approx(1.0)
    assert report.variable("jpeg_quality").overall.direction == "higher_in_fake"  # lossless
    assert report.variable("width").overall.direction == "higher_in_real"
    # Nothing about modes or metadata differs, so those stay at chance.
    for name in ("mode", "has_exif", "png_text", "has_icc_profile"):
        assert report.variable(name).overall.auc == 0.5
        assert not report.variable(name).flagged


def test_per_group_numbers_and_summaries(biased: Path) -> None:
    report = audit_dataset(biased)
    assert report.groups == list(GROUPS)
    for group in GROUPS:
        result = report.variable("format").groups[group]
        assert (result.n_real, result.n_fake) == (N, N)
        assert result.auc == pytest.approx(1.0) and result.flagged
    summaries = report.summaries
    assert set(summaries) == {"real", "fake", "fake/gen0", "fake/gen1"}
    assert summaries["real"].formats == {"JPEG": N}
    assert summaries["real"].jpeg_quality == {90: N}
    assert summaries["real"].chroma_subsampling == {"4:2:0": N}
    assert summaries["fake/gen0"].formats == {"PNG": N}
    assert summaries["fake/gen0"].top_sizes == {"64x80": N}
    assert summaries["fake"].quantiles["aspect_ratio"]["median"] == pytest.approx(0.8)
    data = json.loads(json.dumps(report.to_dict()))  # JSON-ready as it is
    assert data["variables"]["width"]["groups"]["gen1"]["auc"] == pytest.approx(1.0)
    assert data["summaries"]["real"]["jpeg_quality"] == {"90": N}


def test_unbiased_set_flags_nothing(tmp_path: Path) -> None:
    report = audit_dataset(write_unbiased(tmp_path / "ds"))
    assert report.flagged == []
    for variable in report.variables:
        assert variable.overall.auc == pytest.approx(0.5)
        assert all(r.auc == pytest.approx(0.5) for r in variable.groups.values())


def test_debias_removes_every_flag(biased: Path, debiased: Path) -> None:
    report = audit_dataset(debiased)
    assert report.flagged == [], report.to_dict()["variables"]
    assert report.n_real == N and report.n_fake == N * len(GROUPS)
    assert report.summaries["real"].top_sizes == {"64x64": N}  # the smallest side in the set
    assert report.summaries["fake"].jpeg_quality == {96: N * len(GROUPS)}
    assert report.summaries["real"].chroma_subsampling == {"4:2:0": N}


def test_debias_layout_names_manifest_and_info(biased: Path, debiased: Path) -> None:
    assert sorted(p.name for p in (debiased / "real").iterdir()) == sorted(
        f"p{i}_0.jpg" for i in range(N)
    )
    assert (debiased / "fake" / "gen1" / "p3_gen1.jpg").is_file()
    rows = read_manifest(debiased)
    assert len(rows) == N * (1 + len(GROUPS))
    row = next(r for r in rows if r.path == "fake/gen0/p5_gen0.jpg")
    # Without a manifest or tile names, each file is its own photo (fakescope.data.layout).
    assert (row.label, row.group, row.format) == (1, "gen0", "JPEG")
    assert row.photo_id == "fake/gen0/p5_gen0.png"
    assert (row.width, row.height) == (64, 64) and len(row.sha256) == 64
    info = json.loads((debiased / DEBIAS_INFO_NAME).read_text())
    assert info["size"] == 64 and info["quality"] == 96 and info["skipped"] == []
    crops = {f["source_path"]: (f["top"], f["left"]) for f in info["files"]}
    assert crops["real/p0_0.jpg"] == (16, 16)  # centred, on the 8x8 JPEG grid
    assert crops["fake/gen0/p0_gen0.png"] == (8, 0)


def test_debias_skips_images_smaller_than_size(biased: Path, tmp_path: Path) -> None:
    result = debias_dataset(biased, tmp_path / "out", seed=0, size=72)
    assert len(result.files) == N  # reals are 96x96; every 64-wide fake is too small
    assert len(result.skipped) == N * len(GROUPS)
    assert "smaller than the 72x72 crop" in result.skipped[0].reason
    assert {f.width for f in result.files} == {72}


def test_debias_random_crop_is_aligned_and_seeded(biased: Path, tmp_path: Path) -> None:
    first = debias_dataset(biased, tmp_path / "a", seed=3, crop="random", size=40)
    again = debias_dataset(biased, tmp_path / "b", seed=3, crop="random", size=40)
    boxes = [(f.top, f.left) for f in first.files]
    assert boxes == [(f.top, f.left) for f in again.files]
    assert all(top % 8 == 0 and left % 8 == 0 for top, left in boxes)
    assert len(set(boxes)) > 1


def test_debias_crops_forgery_masks_and_flows(tmp_path: Path) -> None:
    root = write_unbiased(tmp_path / "ds")
    rng = np.random.default_rng(1)
    (root / "fake" / "splice").mkdir()
    (root / "masks" / "splice").mkdir(parents=True)
    (root / "flow" / "splice").mkdir(parents=True)
    Image.fromarray(natural_like(rng, 96)).save(root / "fake" / "splice" / "p0_s.png")
    mask = np.zeros((96, 96), dtype=np.uint8)
    mask[20:50, 30:70] = 255
    Image.fromarray(mask).save(root / "masks" / "splice" / "p0_s.png")
    flow = rng.normal(size=(96, 96, 2)).astype(np.float32)
    np.save(root / "flow" / "splice" / "p0_s.npy", flow)
    out = tmp_path / "out"
    result = debias_dataset(root, out, seed=0, size=48)
    written = next(f for f in result.files if f.source_path == "fake/splice/p0_s.png")
    assert written.mask == "masks/splice/p0_s.png"
    top, left = written.top, written.left
    with Image.open(out / written.mask) as saved:
        np.testing.assert_array_equal(np.asarray(saved), mask[top : top + 48, left : left + 48])
    np.testing.assert_array_equal(
        np.load(out / "flow" / "splice" / "p0_s.npy"), flow[top : top + 48, left : left + 48]
    )
    row = next(r for r in read_manifest(out) if r.path == "fake/splice/p0_s.jpg")
    assert row.mask == "masks/splice/p0_s.png"


def test_debias_cannot_remove_compression_history(tmp_path: Path) -> None:
    """Reals compressed at q75 before the JPEG96 pass stay smaller: the audit still says so."""
    root = tmp_path / "ds"
    (root / "real").mkdir(parents=True)
    (root / "fake").mkdir(parents=True)
    rng = np.random.default_rng(2)
    for i in range(N):
        data, _ = _jpeg_decoded(natural_like(rng, 64), 75)
        (root / "real" / f"r{i}_0.jpg").write_bytes(data)
        Image.fromarray(natural_like(rng, 64)).save(root / "fake" / f"f{i}_0.png")
    debias_dataset(root, tmp_path / "out", seed=0)
    report = audit_dataset(tmp_path / "out")
    assert {"format", "jpeg_quality", "width"}.isdisjoint(report.flagged)
    assert "bytes_per_pixel" in report.flagged
    assert report.variable("bytes_per_pixel").overall.direction == "higher_in_fake"


def test_bad_files_are_reported_and_skipped(tmp_path: Path) -> None:
    root = write_unbiased(tmp_path / "ds")
    (root / "real" / "bad_0.jpg").write_bytes(b"this is not an image")
    (root / "fake" / "gen0" / "empty_0.png").write_bytes(b"")
    good = (root / "real" / "p0_0.jpg").read_bytes()
    (root / "fake" / "gen1" / "cut_0.jpg").write_bytes(good[: len(good) // 2])
    report = audit_dataset(root)
    kinds = {e.path: e.kind for e in report.errors}
    assert kinds == {"real/bad_0.jpg": "unsupported_format", "fake/gen0/empty_0.png": "empty_file"}
    assert report.n_real == N and report.n_fake == N * len(GROUPS) + 1  # cut header is fine
    decoded = audit_dataset(root, decode=True)  # decoding finds the cut pixel data too
    assert {e.path: e.kind for e in decoded.errors}["fake/gen1/cut_0.jpg"] == "truncated_image"
    result = debias_dataset(root, tmp_path / "out", seed=0)
    assert {e.path for e in result.errors} == set(kinds) | {"fake/gen1/cut_0.jpg"}
    assert len(result.files) == N * (1 + len(GROUPS))


def test_debias_refuses_a_non_empty_or_nested_output(biased: Path, tmp_path: Path) -> None:
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("x")
    with pytest.raises(InputError, match="not empty"):
        debias_dataset(biased, busy)
    with pytest.raises(InputError, match="inside the dataset"):
        debias_dataset(biased, biased / "copy")


def test_cnndetection_layout_pairs_reals_per_group(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    for group, fake_format in (("progan", "PNG"), ("stylegan", "JPEG")):
        for marker in ("0_real", "1_fake"):
            (tmp_path / group / marker).mkdir(parents=True)
        for i in range(6):
            Image.fromarray(natural_like(rng, 32)).save(
                tmp_path / group / "0_real" / f"{group}r{i}_0.jpg", quality=95
            )
            suffix = ".png" if fake_format == "PNG" else ".jpg"
            Image.fromarray(natural_like(rng, 32)).save(
                tmp_path / group / "1_fake" / f"{group}f{i}_0{suffix}", quality=95
            )
    report = audit_dataset(tmp_path)
    assert report.groups == ["progan", "stylegan"]
    assert report.variable("format").groups["progan"].auc == pytest.approx(1.0)
    assert report.variable("format").groups["stylegan"].auc == 0.5
    assert report.variable("format").groups["progan"].n_real == 6
    assert {"real/progan", "fake/stylegan"} <= set(report.summaries)


def _png_with_trailing_text(path: Path, pixels: np.ndarray, keyword: bytes) -> None:
    """A PNG whose tEXt chunk follows the pixel data, where Pillow's header parse stops."""
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    data = buffer.getvalue()
    body = b"tEXt" + keyword + b"\x00value"
    chunk = (len(body) - 4).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")
    iend = data.rindex(b"IEND") - 4
    path.write_bytes(data[:iend] + chunk + data[iend:])


def test_header_record_reads_metadata_without_decoding(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    pixels = natural_like(rng, 48)[:, :24]  # 24 wide, 48 high
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees to display
    exif[0x010F] = "Camera Maker"
    Image.fromarray(pixels).save(tmp_path / "a.jpg", quality=100, subsampling=0, exif=exif)
    Image.fromarray(pixels[..., 0]).save(tmp_path / "grey.jpg", quality=70)
    _png_with_trailing_text(tmp_path / "t.png", pixels, b"parameters")

    def record(name: str):
        item = LabelledItem(tmp_path / name, 0, "", name)
        return read_file_record(tmp_path / name, tmp_path, item)

    jpeg = record("a.jpg")
    assert (jpeg.width, jpeg.height) == (48, 24)  # as displayed, like load_image's pixels
    assert load_image(tmp_path / "a.jpg").pixels.shape[:2] == (24, 48)
    assert jpeg.jpeg_quality == 100 == load_image(tmp_path / "a.jpg").metadata.jpeg_quality
    assert jpeg.chroma_subsampling == "4:4:4" and jpeg.has_exif
    grey = record("grey.jpg")
    assert (grey.chroma_subsampling, grey.mode, grey.jpeg_quality) == ("grey", "L", 70)
    png = record("t.png")
    assert png.png_text_keys == ("parameters",) and png.jpeg_quality is None
    assert png.chroma_subsampling == "n/a" and not png.has_exif
    assert png.bytes_per_pixel == pytest.approx((tmp_path / "t.png").stat().st_size / (24 * 48))


def test_metadata_and_non_monotone_leaks_are_flagged(tmp_path: Path) -> None:
    """Reals carry EXIF and are 48 or 80 wide; fakes carry prompt text and are all 64 wide."""
    rng = np.random.default_rng(6)
    (tmp_path / "real").mkdir()
    (tmp_path / "fake").mkdir()
    exif = Image.Exif()
    exif[0x010F] = "Camera Maker"
    for i in range(N):
        width = 48 if i % 2 else 80
        Image.fromarray(natural_like(rng, 80)[:40, :width]).save(
            tmp_path / "real" / f"r{i}_0.png", exif=exif
        )
        _png_with_trailing_text(
            tmp_path / "fake" / f"f{i}_0.png", natural_like(rng, 64)[:40], b"parameters"
        )
    report = audit_dataset(tmp_path)
    assert {"has_exif", "png_text", "width"} <= set(report.flagged)
    width = report.variable("width").overall
    assert width.auc_rank == pytest.approx(0.5)  # the median width is the same ...
    assert width.auc_category is not None and width.auc_category > 0.9  # ... the values are not
    assert "format" not in report.flagged and "height" not in report.flagged


def test_chance_level_and_histogram_text() -> None:
    assert chance_auc(0, 5) is None
    assert chance_auc(12, 12) == pytest.approx(0.5 + 1.96 * np.sqrt(25 / (12 * 144)))
    assert chance_auc(10_000, 10_000) < 0.51
    text = quality_histogram({90: 8, 75: 2})
    assert text.startswith("|") and "q90:8" in text and "q75:2" in text
    assert quality_histogram({}) == "-"


def test_cli_json_end_to_end(biased: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["data", "audit", str(biased), "--format", "json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    audit = document["audit"]
    assert set(audit["flagged"]) >= STORAGE_LEAKS
    assert audit["variables"]["format"]["overall"]["auc"] == pytest.approx(1.0)
    assert set(audit["variables"]["format"]["groups"]) == set(GROUPS)
    assert document["debias"] is None and document["debiased_audit"] is None
    out = tmp_path / "copy"
    report_file = tmp_path / "report.json"
    args = ["data", "audit", str(biased), "-f", "json", "--debias", str(out)]
    result = runner.invoke(app, [*args, "--out", str(report_file), "--quality", "90"])
    assert result.exit_code == 0, result.output
    document = json.loads(report_file.read_text())
    assert document["debias"]["n_written"] == N * (1 + len(GROUPS))
    assert document["debiased_audit"]["flagged"] == []
    assert document["debiased_audit"]["summaries"]["real"]["jpeg_quality"] == {"90": N}


def test_cli_table_with_debias(biased: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["data", "audit", str(biased), "--debias", str(tmp_path / "c")])
    assert result.exit_code == 0, result.output
    assert "flagged:" in result.stdout and "jpeg_quality" in result.stdout
    assert "Debiased copy" in result.stdout
    assert "no variable separates real from fake" in result.stdout
    assert "q90:12" in result.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["data", "audit", "/no/such/folder"],
        ["data", "audit", "{empty}"],
        ["data", "audit", "{biased}", "--threshold", "1.5"],
        ["data", "audit", "{biased}", "--debias", "{busy}"],
        ["data", "audit", "{biased}", "--format", "xml"],
    ],
)
def test_cli_usage_errors_exit_2(args: list[str], biased: Path, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "file").write_text("x")
    paths = {"empty": tmp_path / "empty", "biased": biased, "busy": tmp_path / "busy"}
    result = runner.invoke(app, [arg.format(**paths) for arg in args])
    assert result.exit_code == 2, result.output
