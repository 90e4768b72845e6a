"""The plain-language explanation: what the sentences say for each kind of result."""

from __future__ import annotations

from fakescope.calibration.threshold import ThresholdCalibration
from fakescope.server.explain import explain

CALIBRATION = ThresholdCalibration(
    threshold=0.6,
    target_fpr=0.05,
    review_threshold=0.3,
    review_fpr=0.2,
    n_calibration=200,
    calibration_fpr=0.05,
)


def result(score: float | None, verdict: str | None, **extra: object) -> dict:
    return {
        "path": "x.png",
        "sha256": "a" * 64,
        "score": score,
        "verdict": verdict,
        "detectors": {"spectral": score} if score is not None else {},
        "evidence": {},
        "error": None,
        "error_kind": None,
        **extra,
    }


def test_verdicts_are_put_against_the_calibrated_thresholds():
    fake = explain(result(0.93, "fake"), CALIBRATION)[0]
    assert fake.startswith("Likely AI-generated") and "0.60" in fake and "5 %" in fake
    uncertain = explain(result(0.4, "uncertain"), CALIBRATION)[0]
    assert (
        uncertain.startswith("Worth a human look") and "0.30" in uncertain and "20 %" in uncertain
    )
    real = explain(result(0.1, "real"), CALIBRATION)[0]
    assert real.startswith("No trace") and "does not prove" in real
    # Without the model's calibration (a result of another model), no threshold is claimed.
    other = explain(result(0.93, "fake"), None)[0]
    assert "threshold" not in other and "0.93" in other


def test_errors_get_the_message_and_a_hint():
    sentences = explain(
        result(None, None, error="truncated JPEG file", error_kind="truncated_image"), CALIBRATION
    )
    assert "truncated JPEG file" in sentences[0] and "cut off" in sentences[1]


def test_strongest_detector_is_named_when_there_are_several():
    row = result(0.8, "fake", detectors={"fusion": 0.8, "npr": 0.95, "spectral": 0.2})
    sentences = explain(row, CALIBRATION)
    assert any("npr detector (0.95" in s for s in sentences)
    assert not any("strongest" in s for s in explain(result(0.8, "fake"), CALIBRATION))


def test_grouped_evidence_from_the_readers():
    evidence = {
        "rule": {
            "decided_by": "generator_metadata",
            "reason": "generator metadata: Stable Diffusion",
            "pixel_verdict": "real",
        },
        "c2pa": {"present": False},
        "exif": {"camera": "Canon EOS R5", "software": None, "generator": [], "editing": []},
        "text_chunks": {
            "generator": [
                {"tool": "Stable Diffusion", "where": "png:parameters", "detail": "Steps: 20"}
            ],
            "editing": [],
        },
    }
    sentences = explain(result(0.1, "fake", evidence=evidence), CALIBRATION)
    text = " ".join(sentences)
    assert "not from its pixels" in text and "pixel detectors alone said real" in text
    assert "Stable Diffusion (png:parameters)" in text
    assert "Canon EOS R5" in text and "not proof" in text
    assert "C2PA" not in text  # present: false must not read as credentials


def test_c2pa_and_editing_signs():
    evidence = {
        "c2pa": {"present": True, "validation_state": "Valid", "claim_generator": "Photoshop"},
        "jpeg": {"editing": [{"sign": "double_compression", "detail": "two tables"}]},
    }
    text = " ".join(explain(result(0.1, "real", evidence=evidence), CALIBRATION))
    assert "C2PA Content Credentials (validation: Valid; made with Photoshop)" in text
    assert "Signs of editing" in text and "double_compression" in text


def test_video_segments_and_uncalibrated_video_threshold():
    video = {
        "frames": [{"time_s": 0.0, "score": 0.1}, {"time_s": 1.0, "score": 0.9}],
        "segments": [{"start_s": 1.0, "end_s": 2.5}],
        "threshold": {"source": "frame", "threshold": 0.6},
    }
    text = " ".join(explain(result(0.9, "fake", evidence={"video": video}), CALIBRATION))
    assert "2 frames were scored" in text and "1.0 to 2.5 s" in text
    assert "not calibrated" in text
    quiet = {"frames": video["frames"], "segments": []}
    assert "No segment" in " ".join(explain(result(0.1, "real", evidence={"video": quiet}), None))
