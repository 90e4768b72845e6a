"""The API's response bodies, as they appear in the OpenAPI document.

``ScanResultModel`` mirrors :class:`~fakescope.results.ScanResult` and allows extra fields, so a
field added to the dataclass reaches clients without a change here.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class ScanResultModel(BaseModel):
    """One file's result: the type ``fakescope scan --format jsonl`` writes, one per line."""

    model_config = ConfigDict(extra="allow")

    path: str = Field(description="The file name the client gave (last component only).")
    sha256: str | None = Field(description="SHA-256 of the file's bytes: its key everywhere.")
    score: float | None = Field(description="Probability that the file is fake; null on error.")
    verdict: Literal["real", "fake", "uncertain"] | None
    detectors: dict[str, float] = Field(description="Each detector's own score.")
    evidence: dict[str, Any] = Field(description="Metadata and what each detector measured.")
    error: str | None
    error_kind: str | None = Field(description="Stable tag, e.g. truncated_image.")


class ModelInfo(BaseModel):
    name: str
    detector: str
    threshold: float = Field(description="Scores at or above it are `fake`.")
    review_threshold: float = Field(
        description="Scores at or above it (and below the threshold) are `uncertain`."
    )
    target_fpr: float
    review_fpr: float
    n_calibration: int


class ScanResponse(BaseModel):
    job_id: str
    model: str
    results: list[ScanResultModel]


class JobStatus(BaseModel):
    job_id: str
    status: Literal["queued", "running", "done"]
    total: int
    completed: int
    created_at: float
    finished_at: float | None
    status_url: str
    results: list[ScanResultModel] = Field(description="Filled once the job is done.")


class HealthStatus(BaseModel):
    status: Literal["ok"]
    version: str
    model: str
    database: str
    workers: int
    queued_files: int


class OverlayInfo(BaseModel):
    kind: Literal["localization", "edits", "residual"]
    url: str
    caption: str


class Report(BaseModel):
    """What the page shows about one result."""

    result: ScanResultModel
    media: Literal["image", "video"]
    model: str = Field(description="The model that produced the result.")
    thresholds: ModelInfo | None = Field(
        description="The serving model's thresholds, when it is the model of the result."
    )
    explanation: list[str]
    seen_as: list[str] = Field(description="Paths and upload names this content came under.")
    original_url: str | None
    spectrum_url: str | None
    overlays: list[OverlayInfo] = Field(
        description="The detector's localization map first when the result has one; then the "
        "server localizer's edits and the residual view when the original is kept."
    )


class EditLocalization(BaseModel):
    """Where the server's localizer finds edits in a kept upload (computed on demand)."""

    localizer: str = Field(description="The server's localizer, e.g. segmentation-field.")
    method: str = Field(description="Its method, e.g. segmentation.")
    score: float = Field(description="Image-level probability that a region was edited.")
    threshold: float = Field(description="Pixel threshold of the mask.")
    image_threshold: float = Field(description="Score at or above which edits are reported.")
    manipulated: bool = Field(description="score >= image_threshold.")
    tampered_fraction: float = Field(description="Share of the image's pixels in the mask.")
    height: int
    width: int
    regions: list[dict[str, Any]] = Field(description="Regions the method can name (bbox, ...).")
    seconds: float = Field(description="Seconds the localization took when it was computed.")
    overlay_url: str = Field(description="The heat map as a transparent red PNG overlay.")


class Spectrum(BaseModel):
    frequency: list[float] = Field(description="Fraction of the highest frequency, (0, 1].")
    log_magnitude: list[float]
    n_rings: int
    bands: dict[str, list[float]]


class ErrorBody(BaseModel):
    """``detail`` is a sentence, or for a request that fails validation FastAPI's list of
    problems (where, what)."""

    detail: str | list[dict[str, Any]]
