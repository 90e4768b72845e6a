"""Evidence readers (EXIF, XMP, text chunks, JPEG, C2PA), their isolation, and the verdict rule.

Real C2PA fixtures come from ``../shared/data/c2pa`` (skipped when absent); everything else is
crafted here, in memory or under ``tmp_path``.
"""

from __future__ import annotations

import csv
import io
import json
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import ExifTags, Image, PngImagePlugin

from fakescope.cli.output import CsvWriter
from fakescope.evidence import READERS, collect_evidence
from fakescope.evidence.exif import thumbnail_similarity
from fakescope.evidence.rules import (
    C2PA_AI_DECLARATION,
    GENERATOR_METADATA,
    PIXELS,
    decide,
)
from fakescope.evidence.source import undo_orientation
from fakescope.evidence.text_chunks import parse_a1111
from fakescope.io.image import _TRANSPOSE_FOR_ORIENTATION, decode_image_bytes
from tests.conftest import natural_like

C2PA_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "c2pa"
A1111_PARAMETERS = (
    "a photo of an astronaut riding a horse, highly detailed\n"
    "Negative prompt: blurry, lowres\n"
    "Steps: 20, Sampler: Euler a, CFG scale: 7, Seed: 1234, Size: 512x512, "
    'Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, Lora hashes: "a: 1, b: 2"'
)
AI_SOURCE = "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"


def c2pa_fixture(name: str) -> bytes:
    path = C2PA_DIR / name
    if not path.is_file():
        pytest.skip(f"C2PA fixture {path} is absent (../shared is not checked out beside the repo)")
    return path.read_bytes()


def evidence_of(data: bytes) -> dict:
    evidence = collect_evidence(data, decode_image_bytes(data))
    json.dumps(evidence)  # every report must be JSON-ready
    return evidence


def photo(seed: int = 0, size: int = 256) -> np.ndarray:
    return natural_like(np.random.default_rng(seed), size)


def encode(pixels: np.ndarray | Image.Image, fmt: str = "JPEG", **save_args) -> bytes:
    image = pixels if isinstance(pixels, Image.Image) else Image.fromarray(pixels)
    buffer = io.BytesIO()
    image.save(buffer, fmt, **save_args)
    return buffer.getvalue()


def exif_with_thumbnail(ifd0: dict[int, str], exif_ifd: dict[int, str], thumbnail: bytes) -> bytes:
    """An EXIF block with IFD0, an Exif sub-IFD and an IFD1 thumbnail (Pillow writes no IFD1)."""
    exif = Image.Exif()
    for tag, value in ifd0.items():
        exif[tag] = value
    sub = exif.get_ifd(ExifTags.IFD.Exif)
    sub.update(exif_ifd)
    block = bytearray(exif.tobytes()[6:])  # without the "Exif\0\0" APP1 identifier
    order = "<" if block[:2] == b"II" else ">"
    first_ifd = struct.unpack(order + "I", block[4:8])[0]
    entries = struct.unpack(order + "H", block[first_ifd : first_ifd + 2])[0]
    next_pointer = first_ifd + 2 + 12 * entries
    ifd1_offset = len(block)
    thumb_offset = ifd1_offset + 2 + 2 * 12 + 4
    ifd1 = struct.pack(order + "H", 2)
    ifd1 += struct.pack(order + "HHII", ExifTags.Base.JpegIFOffset, 4, 1, thumb_offset)
    ifd1 += struct.pack(order + "HHII", ExifTags.Base.JpegIFByteCount, 4, 1, len(thumbnail))
    ifd1 += struct.pack(order + "I", 0)
    block[next_pointer : next_pointer + 4] = struct.pack(order + "I", ifd1_offset)
    return b"Exif\x00\x00" + bytes(block) + ifd1 + thumbnail


def thumbnail_of(pixels: np.ndarray) -> bytes:
    image = Image.fromarray(pixels)
    image.thumbnail((160, 160))
    return encode(image, quality=85)


# --- EXIF ---------------------------------------------------------------------------------


def test_edited_exif_reports_editor_dates_and_a_thumbnail_of_another_picture():
    pixels, other = photo(1), photo(2)
    exif = exif_with_thumbnail(
        {
            ExifTags.Base.Make: "Canon",
            ExifTags.Base.Model: "Canon EOS 5D Mark IV",
            ExifTags.Base.Software: "Adobe Photoshop 25.0 (Windows)",
            ExifTags.Base.DateTime: "2020:01:01 10:00:00",
        },
        {ExifTags.Base.DateTimeOriginal: "2021:06:05 12:30:00"},
        thumbnail_of(other),
    )
    report = evidence_of(encode(pixels, quality=92, exif=exif))["exif"]
    assert report["camera"] == "Canon Canon EOS 5D Mark IV"
    assert report["dates"] == {
        "modified": "2020:01:01 10:00:00",
        "original": "2021:06:05 12:30:00",
        "digitized": None,
    }
    signs = {item["sign"] for item in report["editing"]}
    assert signs == {"editor_software", "modified_before_original", "thumbnail_differs"}
    assert report["thumbnail"]["similarity"] < 0.5 and report["thumbnail"]["differs"]
    assert report["generator"] == []


def test_a_thumbnail_of_the_same_picture_matches():
    pixels = photo(3)
    exif = exif_with_thumbnail(
        {ExifTags.Base.Make: "NIKON", ExifTags.Base.DateTime: "2021:06:05 12:30:00"},
        {ExifTags.Base.DateTimeOriginal: "2021:06:05 12:30:00"},
        thumbnail_of(pixels),
    )
    report = evidence_of(encode(pixels, quality=92, exif=exif))["exif"]
    assert report["thumbnail"]["similarity"] > 0.95 and not report["thumbnail"]["differs"]
    assert report["editing"] == []


def test_thumbnail_similarity_ignores_letterbox_bars():
    pixels = photo(4, 256)[:144]  # 16:9
    thumb = np.zeros((120, 160), dtype=np.float64)
    small = Image.fromarray(pixels).convert("L").resize((160, 90), Image.Resampling.BOX)
    thumb[15:105] = np.asarray(small, dtype=np.float64)
    assert thumbnail_similarity(thumb, pixels) > 0.95


def test_a_generator_in_the_software_tag_is_a_marker():
    exif = Image.Exif()
    exif[ExifTags.Base.Software] = "NovelAI"
    report = evidence_of(encode(photo(5), quality=90, exif=exif))["exif"]
    assert [m["tool"] for m in report["generator"]] == ["NovelAI"]


def test_exif_in_a_png_is_read_and_a_png_without_it_has_no_exif_report():
    exif = Image.Exif()
    exif[ExifTags.Base.Model] = "Pixel 8"
    exif[ExifTags.Base.Software] = "Snapseed 2.0"
    report = evidence_of(encode(photo(20), "PNG", exif=exif))["exif"]
    assert report["camera"] == "Pixel 8"
    assert [s["detail"] for s in report["editing"]] == ["Snapseed in EXIF software (Snapseed 2.0)"]
    assert "exif" not in evidence_of(encode(photo(20), "PNG"))


@pytest.mark.parametrize("orientation", range(1, 9))
def test_undo_orientation_inverts_the_transpose_io_applies(orientation):
    stored = photo(6, 64)[:40]  # not square, so a wrong rotation changes the shape
    image = Image.fromarray(stored)
    if orientation in _TRANSPOSE_FOR_ORIENTATION:
        image = image.transpose(_TRANSPOSE_FOR_ORIENTATION[orientation])
    assert np.array_equal(undo_orientation(np.asarray(image), orientation), stored)


# --- PNG text chunks and XMP ----------------------------------------------------------------


def png_with_text(pixels: np.ndarray, **texts: str) -> bytes:
    info = PngImagePlugin.PngInfo()
    for key, value in texts.items():
        info.add_text(key, value, zip=len(value) > 200)
    return encode(pixels, "PNG", pnginfo=info)


def test_png_parameters_chunk_is_a_stable_diffusion_marker():
    report = evidence_of(png_with_text(photo(7), parameters=A1111_PARAMETERS))["text_chunks"]
    assert report["keys"] == ["png:parameters"]
    tools = [m["tool"] for m in report["generator"]]
    assert tools == ["AUTOMATIC1111-format parameters"]
    assert report["parameters"]["settings"]["Steps"] == "20"
    assert report["parameters"]["settings"]["Lora hashes"] == "a: 1, b: 2"
    assert report["parameters"]["negative_prompt"] == "blurry, lowres"
    assert report["parameters"]["prompt"].startswith("a photo of an astronaut")


def test_comfyui_graph_and_invokeai_keys_are_markers():
    graph = json.dumps({"3": {"class_type": "KSampler", "inputs": {"seed": 1}}})
    data = png_with_text(photo(8), prompt=graph, invokeai_metadata="{}")
    tools = sorted(m["tool"] for m in evidence_of(data)["text_chunks"]["generator"])
    assert tools == ["ComfyUI", "InvokeAI"]


def test_ordinary_text_is_listed_but_is_no_marker():
    data = png_with_text(
        photo(9), Title="Holiday", prompt="say cheese", parameters="exposure +1", Software="GIMP"
    )
    report = evidence_of(data)["text_chunks"]
    assert set(report["keys"]) == {"png:Title", "png:prompt", "png:parameters", "png:Software"}
    assert report["generator"] == [] and report["parameters"] is None
    assert decide("real", evidence_of(data)).decided_by == PIXELS


def test_a1111_parameters_in_a_jpeg_user_comment():
    exif = Image.Exif()
    comment = b"UNICODE\x00" + A1111_PARAMETERS.encode("utf-16-be")
    exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.UserComment] = comment
    report = evidence_of(encode(photo(10), quality=90, exif=exif))["text_chunks"]
    assert report["parameters"]["settings"]["Sampler"] == "Euler a"
    assert report["generator"][0]["where"] == "exif:UserComment"


def test_parse_a1111_needs_a_settings_line():
    assert parse_a1111("Steps: 3, then walk") is None
    assert parse_a1111("Steps: 30, Seed: 5")["settings"] == {"Steps": "30", "Seed": "5"}


def xmp_packet(body: str) -> bytes:
    return (
        '<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?>'
        '<x:xmpmeta xmlns:x="adobe:ns:meta/">'
        '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        f"{body}</rdf:RDF></x:xmpmeta>"
        '<?xpacket end="w"?>'
    ).encode()


def test_xmp_history_and_digital_source_type():
    packet = xmp_packet(
        '<rdf:Description xmlns:xmp="http://ns.adobe.com/xap/1.0/"'
        ' xmlns:xmpMM="http://ns.adobe.com/xap/1.0/mm/"'
        ' xmlns:stEvt="http://ns.adobe.com/xap/1.0/sType/ResourceEvent#"'
        ' xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/"'
        f' xmp:CreatorTool="Adobe Photoshop 25.0" Iptc4xmpExt:DigitalSourceType="{AI_SOURCE}">'
        "<xmpMM:History><rdf:Seq>"
        '<rdf:li stEvt:action="created" stEvt:softwareAgent="Adobe Photoshop 25.0"/>'
        "<rdf:li><rdf:Description><stEvt:action>saved</stEvt:action>"
        "<stEvt:softwareAgent>Adobe Photoshop 25.0</stEvt:softwareAgent>"
        "</rdf:Description></rdf:li>"
        "</rdf:Seq></xmpMM:History></rdf:Description>"
    )
    evidence = evidence_of(encode(photo(11), quality=90, xmp=packet))
    report = evidence["xmp"]
    assert report["creator_tool"] == "Adobe Photoshop 25.0"
    assert report["digital_source_type"] == "trainedAlgorithmicMedia"
    assert [e["action"] for e in report["history"]] == ["created", "saved"]
    assert {s["sign"] for s in report["editing"]} == {"editor_software", "edit_history"}
    assert decide("real", evidence).decided_by == GENERATOR_METADATA


def test_a_corrupt_or_hostile_xmp_packet_costs_only_its_reader():
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa">'
        b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>'
        b'<x:xmpmeta xmlns:x="adobe:ns:meta/">&b;</x:xmpmeta>'
    )
    for packet in (b"<x:xmpmeta><rdf:RDF>unclosed", bomb):
        exif = Image.Exif()
        exif[ExifTags.Base.Make] = "Canon"
        evidence = evidence_of(encode(photo(12), quality=90, xmp=packet, exif=exif))
        assert set(evidence["xmp"]) == {"error"}
        assert evidence["exif"]["camera"] == "Canon"
        assert evidence["jpeg"]["quality"] == 90


def test_a_failing_reader_is_isolated():
    def broken(source):
        raise RuntimeError("boom")

    data = encode(photo(13), quality=80)
    readers = {"file": READERS["file"], "broken": broken, "jpeg": READERS["jpeg"]}
    evidence = collect_evidence(data, decode_image_bytes(data), readers=readers)
    assert evidence["broken"] == {"error": "RuntimeError: boom"}
    assert evidence["file"]["format"] == "JPEG" and evidence["jpeg"]["quality"] == 80


# --- JPEG -------------------------------------------------------------------------------------


def test_table_families_ijg_adobe_and_custom():
    pixels = photo(14)
    ijg = evidence_of(encode(pixels, quality=83))["jpeg"]["table_match"]
    assert (ijg["family"], ijg["luma_quality"], ijg["luma_exact"]) == ("ijg", 83, True)
    adobe = evidence_of(encode(pixels, quality="web_high"))["jpeg"]["table_match"]
    assert adobe["family"] == "adobe" and "web_high" in adobe["name"]
    tables = [[3 + (i % 7) for i in range(64)], [5 + (i % 5) for i in range(64)]]
    custom = evidence_of(encode(pixels, qtables=tables))["jpeg"]["table_match"]
    assert custom["family"] == "custom"
    luma = Image.open(io.BytesIO(encode(pixels, quality=90))).quantization[0]
    chroma = Image.open(io.BytesIO(encode(pixels, quality=60))).quantization[1]
    split = evidence_of(encode(pixels, qtables=[luma, chroma]))["jpeg"]["table_match"]
    assert split["luma_chroma_mismatch"] and split["chroma_quality"] == 60


def test_double_compression_is_found_and_single_compression_is_not():
    image = Image.fromarray(photo(15, 384))
    single = encode(image, quality=90)
    double = encode(Image.open(io.BytesIO(encode(image, quality=75))), quality=90)
    single_report = evidence_of(single)["jpeg"]
    double_report = evidence_of(double)["jpeg"]
    assert single_report["double_compression"]["analysed"]
    assert not single_report["double_compression"]["likely"]
    assert single_report["editing"] == []
    analysis = double_report["double_compression"]
    assert analysis["likely"] and analysis["periodic_frequencies"] >= 5
    assert analysis["primary_quality"] == 75
    assert [s["sign"] for s in double_report["editing"]] == ["double_jpeg_compression"]
    # Editing is reported, never decisive.
    assert decide("real", evidence_of(double)).verdict == "real"


def test_flat_images_are_not_analysed():
    flat = np.full((128, 128, 3), 90, dtype=np.uint8)
    analysis = evidence_of(encode(flat, quality=90))["jpeg"]["double_compression"]
    assert analysis == {"analysed": False, "reason": "too few nonzero coefficients (a flat image)"}


# --- C2PA -------------------------------------------------------------------------------------


def test_c2pa_valid_manifest():
    pytest.importorskip("c2pa")
    evidence = evidence_of(c2pa_fixture("C.jpg"))
    report = evidence["c2pa"]
    assert report["present"] and report["validation_state"] == "Valid" and not report["trusted"]
    assert report["claim_generator"].startswith("make_test_images/")
    assert report["signature"]["issuer"] == "C2PA Test Signing Cert"
    assert report["actions"][0]["action"] == "c2pa.created"
    # algorithmicMedia is made by a formula, not a trained model: reported, not AI.
    assert report["digital_source_types"] == ["algorithmicMedia"] and not report["declares_ai"]
    assert "signingCredential.untrusted" in report["validation_status"]
    assert decide("real", evidence).decided_by == PIXELS


def test_c2pa_manifest_with_an_ingredient():
    pytest.importorskip("c2pa")
    report = evidence_of(c2pa_fixture("CA.jpg"))["c2pa"]
    assert report["validation_state"] == "Valid"
    assert report["ingredients"] == [
        {
            "title": "A.jpg",
            "format": "image/jpeg",
            "relationship": "parentOf",
            "has_manifest": False,
        }
    ]
    assert [a["action"] for a in report["actions"]] == ["c2pa.opened", "c2pa.color_adjustments"]
    assert report["editing"] == [{"sign": "c2pa_edit_actions", "detail": "c2pa.color_adjustments"}]


def test_a_file_without_manifest_and_its_lightroom_metadata():
    evidence = evidence_of(c2pa_fixture("A.jpg"))
    if "c2pa" in evidence:  # without c2pa-python there is no JUMBF box, so nothing to say
        assert evidence["c2pa"] == {"present": False}
    assert evidence["exif"]["camera"] == "Canon Canon EOS REBEL T3"
    assert evidence["exif"]["software"].startswith("Adobe Lightroom")
    assert evidence["exif"]["thumbnail"]["similarity"] > 0.95
    assert evidence["xmp"]["history_count"] == 3
    assert evidence["jpeg"]["table_match"]["family"] == "adobe"
    assert decide("real", evidence).decided_by == PIXELS


def sign_as_generated(data: bytes, source_type: str = AI_SOURCE) -> bytes:
    """``data`` signed with the shared ES256 test certificate, declaring ``source_type``."""
    c2pa = pytest.importorskip("c2pa")
    info = c2pa.C2paSignerInfo(
        alg=b"es256",
        sign_cert=c2pa_fixture("es256_certs.pem"),
        private_key=c2pa_fixture("es256_private.key"),
        ta_url=None,
    )
    manifest = {
        "claim_generator_info": [{"name": "fakescope-tests", "version": "1"}],
        "title": "generated.jpg",
        "format": "image/jpeg",
        "assertions": [
            {
                "label": "c2pa.actions",
                "data": {
                    "actions": [
                        {
                            "action": "c2pa.created",
                            "digitalSourceType": source_type,
                            "softwareAgent": "Test Diffusion 1.0",
                        }
                    ]
                },
            }
        ],
    }
    signed = io.BytesIO()
    context = c2pa.Context.from_dict({"builder": {"thumbnail": {"enabled": False}}})
    with context, c2pa.Builder(manifest, context=context) as builder:
        builder.sign(c2pa.Signer.from_info(info), "image/jpeg", io.BytesIO(data), signed)
    return signed.getvalue()


def test_a_valid_ai_declaration_decides_fake():
    evidence = evidence_of(sign_as_generated(encode(photo(16), quality=90)))
    report = evidence["c2pa"]
    assert report["validation_state"] == "Valid" and report["declares_ai"]
    assert report["actions"][0]["software_agent"] == "Test Diffusion 1.0"
    decision = decide("real", evidence)
    assert (decision.verdict, decision.decided_by) == ("fake", C2PA_AI_DECLARATION)
    assert "trainedAlgorithmicMedia" in decision.reason


def test_a_corrupt_manifest_is_not_valid_and_the_other_readers_report():
    pytest.importorskip("c2pa")
    original = c2pa_fixture("C.jpg")
    box = original.find(b"jumb")
    damaged = [
        original[: box + 300] + b"\xff" * 200 + original[box + 500 :],  # inside the claim
        original[: box + 40] + bytes(range(256)) * 4 + original[box + 1064 :],  # box structure
    ]
    for data in damaged:
        evidence = evidence_of(data)
        report = evidence["c2pa"]
        assert "error" in report or report["validation_state"] == "Invalid"
        assert evidence["jpeg"]["quality"] == 75 and evidence["file"]["width"] == 2048


def test_an_ai_declaration_in_an_invalid_manifest_is_generator_metadata():
    pytest.importorskip("c2pa")
    signed = sign_as_generated(encode(photo(17), quality=90))
    start = signed.rfind(b"\xff\xda")  # tamper with the image data the manifest hashes
    tampered = signed[: start + 600] + bytes(b ^ 0x55 for b in signed[start + 600 : start + 640])
    tampered += signed[start + 640 :]
    evidence = evidence_of(tampered)
    assert evidence["c2pa"]["validation_state"] == "Invalid" and evidence["c2pa"]["declares_ai"]
    assert decide("real", evidence).decided_by == GENERATOR_METADATA


# --- rules and the scan ----------------------------------------------------------------------


def test_rules_ignore_error_entries_and_keep_the_pixel_verdict():
    evidence = {"text_chunks": {"error": "boom", "generator": [{"tool": "x"}]}, "exif": {}}
    decision = decide("uncertain", evidence)
    assert (decision.verdict, decision.decided_by) == ("uncertain", PIXELS)


def test_scan_overrides_the_verdict_for_generator_metadata_and_keeps_the_score(tmp_path):
    from fakescope.models import load_model
    from fakescope.pipeline.scan import scan_paths

    pixels = photo(18, 256)
    (tmp_path / "sd.png").write_bytes(png_with_text(pixels, parameters=A1111_PARAMETERS))
    (tmp_path / "plain.png").write_bytes(encode(pixels, "PNG"))
    (tmp_path / "plain.jpg").write_bytes(encode(photo(19, 256), quality=90))
    model = load_model()
    results = {Path(r.path).name: r for r in scan_paths([str(tmp_path)], model)}
    sd, plain = results["sd.png"], results["plain.png"]
    assert sd.score == plain.score  # same pixels: evidence never touches the score
    assert (sd.verdict, sd.decided_by) == ("fake", GENERATOR_METADATA)
    assert sd.evidence["rule"]["pixel_verdict"] == plain.verdict
    assert "AUTOMATIC1111" in sd.evidence["rule"]["reason"]
    for name in ("plain.png", "plain.jpg"):
        result = results[name]
        assert result.decided_by == PIXELS
        assert result.verdict == result.evidence["rule"]["pixel_verdict"]
        assert {"file", "detector", "rule"} <= set(result.evidence)
    assert results["plain.jpg"].evidence["jpeg"]["quality"] == 90
    if plain.verdict != "fake":  # the override is visible only when the pixels disagree
        assert sd.verdict != plain.verdict

    out = io.StringIO()
    writer = CsvWriter(out, [model.detector.name])
    writer.write(sd)
    row = next(csv.DictReader(io.StringIO(out.getvalue())))
    assert row["decided_by"] == GENERATOR_METADATA
    assert json.loads(row["evidence"])["text_chunks"]["parameters"]["settings"]["Seed"] == "1234"
