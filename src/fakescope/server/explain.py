"""Plain-language sentences about one result, for people who do not read scores.

They say what the score means against the model's calibrated thresholds, which detector drove
it, what the file's own metadata claims (and that metadata proves little either way), and for
videos where the suspicious parts are. The wording never claims more than the numbers do: a
``real`` verdict means no trace the model knows was found, not that the file is authentic.

Evidence is read by key wherever it sits in ``evidence`` (flat today; grouped by reader as
evidence readers land), so both layouts give the same sentences.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fakescope.calibration.threshold import ThresholdCalibration

ERROR_HINTS: dict[str, str] = {
    "truncated_image": "The file ends early: it was probably cut off while downloading or copying.",
    "corrupt_image": "The file is damaged; a fresh copy from the source may work.",
    "unsupported_format": (
        "Its content is not an image or video format fakescope reads, whatever its name says."
    ),
    "empty_file": "The file is empty.",
    "file_too_large": "The file is over the server's size limit.",
    "image_too_large": "The image has more pixels than the server accepts (a guard against "
    "decompression bombs).",
    "image_too_small": "The image is too small to analyse.",
    "video_unsupported": "This server cannot scan videos (the video extra is not installed).",
}

#: PNG text keys that image generators and their front ends write.
GENERATOR_TEXT_KEYS = frozenset(
    {"parameters", "prompt", "workflow", "negative_prompt", "sd-metadata", "dream", "comment"}
)


def _walk(evidence: Any, depth: int = 0) -> Iterator[tuple[str, Any]]:
    if depth > 4 or not isinstance(evidence, dict):
        return
    for key, value in evidence.items():
        yield str(key), value
        yield from _walk(value, depth + 1)


def _find(evidence: dict[str, Any], *names: str) -> Any:
    wanted = set(names)
    for key, value in _walk(evidence):
        if key in wanted and value not in (None, "", [], {}):
            return value
    return None


def _percent(value: float) -> str:
    return f"{value * 100:.0f} %" if value >= 0.01 else f"{value * 100:.1f} %"


def explain(result: dict[str, Any], calibration: ThresholdCalibration | None) -> list[str]:
    """Sentences about one ``ScanResult.to_dict()``, most important first."""
    if result.get("error"):
        kind = result.get("error_kind") or "error"
        sentences = [f"This file could not be analysed ({kind}): {result['error']}"]
        if kind in ERROR_HINTS:
            sentences.append(ERROR_HINTS[kind])
        return sentences
    sentences = [_verdict_sentence(result, calibration)]
    sentences.extend(_detector_sentences(result))
    evidence = result.get("evidence") or {}
    sentences.extend(_video_sentences(evidence))
    sentences.extend(_metadata_sentences(evidence))
    return sentences


def _verdict_sentence(result: dict[str, Any], calibration: ThresholdCalibration | None) -> str:
    score = float(result.get("score") or 0.0)
    verdict = result.get("verdict")
    if calibration is None:
        return f"The model gives this file a score of {score:.2f} (verdict: {verdict})."
    if verdict == "fake":
        return (
            f"Likely AI-generated or manipulated: the score {score:.2f} is at or above the "
            f"decision threshold {calibration.threshold:.2f}, which only "
            f"{_percent(calibration.target_fpr)} of real photos reached when the model was "
            "calibrated."
        )
    if verdict == "uncertain":
        return (
            f"Worth a human look: the score {score:.2f} is below the decision threshold "
            f"{calibration.threshold:.2f} but above the review threshold "
            f"{calibration.review_threshold:.2f}, which about "
            f"{_percent(calibration.review_fpr)} of real photos reach."
        )
    return (
        f"No trace of generation found: the score {score:.2f} is below the review threshold "
        f"{calibration.review_threshold:.2f}. This does not prove the file is authentic; it "
        "means the detectors found none of the traces they know."
    )


def _detector_sentences(result: dict[str, Any]) -> list[str]:
    detectors = result.get("detectors") or {}
    if len(detectors) < 2:
        return []
    name, score = max(detectors.items(), key=lambda item: item[1])
    others = ", ".join(f"{n} {s:.2f}" for n, s in detectors.items() if n != name)
    return [f"The strongest signal came from the {name} detector ({score:.2f}; {others})."]


def _video_sentences(evidence: dict[str, Any]) -> list[str]:
    video = evidence.get("video")
    if not isinstance(video, dict):
        return []
    # Read directly, not with `_find`: an empty list of segments is an answer, not a gap.
    frames = next((video[k] for k in ("frames", "frame_scores") if k in video), None)
    segments = next((video[k] for k in ("segments", "suspicious_segments") if k in video), None)
    sentences = []
    if isinstance(frames, list) and frames:
        sentences.append(f"{len(frames)} frames were scored.")
    if isinstance(segments, list):
        if segments:
            spans = ", ".join(_span(item) for item in segments[:5])
            more = f" and {len(segments) - 5} more" if len(segments) > 5 else ""
            sentences.append(f"Suspicious segments: {spans}{more}.")
        else:
            sentences.append("No segment of the video stands out as suspicious.")
    threshold = video.get("threshold")
    if isinstance(threshold, dict) and threshold.get("source") == "frame":
        sentences.append(
            "The threshold was calibrated on single images and is applied here to the video's "
            "score, so the false-positive rate for whole videos is not calibrated."
        )
    return sentences


def _span(segment: Any) -> str:
    if isinstance(segment, dict):
        start = segment.get("start_s", segment.get("start"))
        end = segment.get("end_s", segment.get("end"))
        if isinstance(start, int | float) and isinstance(end, int | float):
            return f"{start:.1f} to {end:.1f} s"
    if isinstance(segment, list | tuple) and len(segment) == 2:
        return f"{segment[0]} to {segment[1]}"
    return str(segment)


def _collect(evidence: dict[str, Any], name: str) -> list[Any]:
    """Every item of every list called ``name``, from all readers' reports."""
    items: list[Any] = []
    for key, value in _walk(evidence):
        if key == name and isinstance(value, list):
            items.extend(value)
    return items


def _describe_marker(item: Any) -> str:
    if isinstance(item, dict):
        tool = item.get("tool") or item.get("sign") or "?"
        where = item.get("where")
        detail = item.get("detail")
        text = f"{tool} ({where})" if where else str(tool)
        return f"{text}: {_short(detail, 60)}" if detail and not where else text
    return _short(item, 80)


def _metadata_sentences(evidence: dict[str, Any]) -> list[str]:
    sentences = []
    rule = evidence.get("rule")
    if isinstance(rule, dict) and rule.get("decided_by") not in (None, "pixels"):
        sentences.append(
            f"The verdict comes from the file's metadata, not from its pixels: {rule.get('reason')}"
            f" (the pixel detectors alone said {rule.get('pixel_verdict')!s})."
        )
    c2pa = evidence.get("c2pa")
    if isinstance(c2pa, dict) and c2pa.get("present"):
        state = c2pa.get("validation_state") or "unknown"
        made_with = c2pa.get("claim_generator")
        sentences.append(
            f"The file carries C2PA Content Credentials (validation: {state}"
            + (f"; made with {made_with}" if made_with else "")
            + "). See the evidence panel for who signed them."
        )
    generators = list(
        dict.fromkeys(_describe_marker(item) for item in _collect(evidence, "generator"))
    )
    if generators:
        sentences.append(f"The file's metadata names an AI generator: {'; '.join(generators[:4])}.")
    camera = _find(evidence, "exif_camera", "camera")
    if isinstance(camera, str):
        sentences.append(
            f"Its EXIF metadata names a camera ({camera}). Metadata is easy to add or strip, so "
            "this is a hint, not proof."
        )
    software = _find(evidence, "exif_software", "software")
    if isinstance(software, str) and not generators:
        sentences.append(f"Its metadata names the software {software!r}.")
    editing = list(dict.fromkeys(_describe_marker(item) for item in _collect(evidence, "editing")))
    if editing:
        sentences.append(
            "Signs of editing, which say nothing about generation on their own: "
            f"{'; '.join(editing[:4])}."
        )
    keys = _find(evidence, "png_text_keys")
    if isinstance(keys, list) and not generators:
        tool_keys = sorted(GENERATOR_TEXT_KEYS.intersection(str(k).lower() for k in keys))
        if tool_keys:
            sentences.append(
                "Its PNG text chunks include keys that image-generation tools write "
                f"({', '.join(tool_keys)})."
            )
    return sentences


def _short(value: Any, limit: int = 120) -> str:
    text = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
