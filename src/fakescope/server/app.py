"""The FastAPI application: the scan API, batch jobs, the case database and the web page.

Routes (all under ``/v1`` need the API key when one is set, except ``/v1/health``):

- ``POST /v1/scan``: files (multipart) or server-side paths (JSON, when allowed); waits up to
  ``scan_timeout_s`` for the results, then answers 202 with the job to poll instead.
- ``POST /v1/jobs``, ``GET /v1/jobs/{id}``: the same work without waiting.
- ``GET /v1/results/{sha256}``: a stored result; ``.../report`` adds what the page shows, and
  ``.../spectrum``, ``.../original.png``, ``.../residual.png``, ``.../localization.png`` the
  views; ``.../edits`` and ``.../edits.png`` where the server's localizer finds edited regions
  in a kept upload (computed on demand, :mod:`fakescope.server.localizing`).
- ``GET /v1/health``, ``GET /v1/model``; ``/docs`` and ``/openapi.json``; ``/`` the page.
"""

from __future__ import annotations

import asyncio
import hmac
import math
import shutil
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from functools import lru_cache
from importlib.resources import files
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.security import APIKeyHeader
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel, Field, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from fakescope import __version__
from fakescope.calibration.model import CalibratedModel
from fakescope.errors import FakescopeError, InputError
from fakescope.io.discover import iter_input_files
from fakescope.io.image import LoadedImage, decode_image_bytes, read_file_bytes
from fakescope.localizers.base import Localizer
from fakescope.server import views
from fakescope.server.explain import explain
from fakescope.server.jobs import Job, JobQueue, QueueFullError
from fakescope.server.localizing import LocalizedUpload, OnDemandLocalizer, UnavailableError
from fakescope.server.scanning import (
    ScanItem,
    Scanner,
    VideoScanner,
    find_video_scanner,
    model_summary,
    path_is_allowed,
)
from fakescope.server.schemas import (
    EditLocalization,
    ErrorBody,
    HealthStatus,
    JobStatus,
    ModelInfo,
    OverlayInfo,
    Report,
    ScanResponse,
    ScanResultModel,
    Spectrum,
)
from fakescope.server.settings import ServerSettings
from fakescope.server.uploads import UploadStore
from fakescope.store.db import CaseStore, Sighting

STATIC_DIR = Path(str(files("fakescope.server") / "static"))
SHA256_PATTERN = r"^[0-9a-fA-F]{64}$"
PAGE_SECURITY_HEADERS = {
    # Everything the page loads comes from this server; blob: for images fetched with the key.
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; "
        "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
    ),
    "Referrer-Policy": "no-referrer",
}

# Module level: routes are defined inside `create_app`, and FastAPI resolves their (string)
# annotations in this module's globals.
API_KEY_HEADER = APIKeyHeader(
    name="X-API-Key",
    auto_error=False,
    description="Required when the server was started with an API key.",
)
ApiKey = Annotated[str | None, Depends(API_KEY_HEADER)]
Sha256 = Annotated[str, PathParam(pattern=SHA256_PATTERN, description="SHA-256 of the file, hex")]
JobId = Annotated[str, PathParam(pattern=r"^[0-9a-f]{32}$")]
Rescan = Annotated[bool, Query(description="Score again even when the database knows the content.")]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class RequestBodyTooLarge(Exception):
    """The body grew past ``max_request_bytes`` while it was read (no Content-Length given)."""


class RequestBodyTimeout(Exception):
    """The client did not send its whole body within ``upload_timeout_s``."""


class BodyGuardMiddleware:
    """Bounds every request body in bytes and in time, before any route reads it.

    A declared Content-Length over the limit is refused at once, without reading a byte; a body
    without one is counted as it streams. The time limit covers the whole body, so a client
    that trickles bytes (slowloris) cannot hold a connection and a spooled file forever.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, timeout_s: float) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > self.max_bytes:
                    response = JSONResponse(
                        {"detail": f"request body over the limit of {self.max_bytes} bytes"},
                        status_code=413,
                    )
                    await response(scope, receive, send)
                    return
        deadline = asyncio.get_running_loop().time() + self.timeout_s
        received = 0

        async def guarded_receive() -> Message:
            nonlocal received
            remaining = deadline - asyncio.get_running_loop().time()
            try:
                message = await asyncio.wait_for(receive(), max(remaining, 0.001))
            except TimeoutError as exc:
                raise RequestBodyTimeout from exc
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise RequestBodyTooLarge
            return message

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                # Browsers must take our content types as given, never guess from the bytes.
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-content-type-options", b"nosniff"),
                ]
            await send(message)

        await self.app(scope, guarded_receive, send_with_headers)


class PathsRequest(BaseModel):
    paths: list[str] = Field(min_length=1, max_length=10_000)


SCAN_REQUEST_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["files"],
                    "properties": {
                        "files": {
                            "type": "array",
                            "minItems": 1,
                            "items": {"type": "string", "format": "binary"},
                            "description": "Images or videos; their content decides the type.",
                        }
                    },
                }
            },
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["paths"],
                    "properties": {
                        "paths": {
                            "type": "array",
                            "items": {"type": "string"},
                            "minItems": 1,
                            "description": "Files or folders on the server, inside the "
                            "folders it allows (`fakescope serve --allow-path`).",
                        }
                    },
                }
            },
        },
    }
}


def _error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    descriptions = {
        400: "Malformed multipart body.",
        401: "Missing or wrong API key.",
        403: "Server-side paths are not enabled, or a path is outside the allowed folders.",
        404: "Not found.",
        408: "The request body took too long to arrive.",
        413: "The request body is over the size limit.",
        415: "Neither multipart/form-data nor application/json.",
        422: "The request is not valid.",
        429: "The scan queue is full; retry after the number of seconds in Retry-After.",
        503: "The server has no usable localizer (switched off, or torch not installed).",
    }
    return {code: {"model": ErrorBody, "description": descriptions[code]} for code in codes}


def _json_safe(value: Any) -> Any:
    """JSON has no NaN or infinity: such numbers in evidence become null instead of a 500."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(key): _json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(item) for item in value]
    return value


def create_app(
    settings: ServerSettings | None = None,
    *,
    model: CalibratedModel | None = None,
    store: CaseStore | None = None,
    video_scanner: VideoScanner | None = None,
    localizer: Localizer | None = None,
) -> FastAPI:
    """The application, with its model loaded and its queue started.

    ``model``, ``store`` and ``localizer`` default to those the settings name (the localizer
    is loaded on first use); tests pass their own.
    """
    settings = settings or ServerSettings()
    if model is None:
        from fakescope.models import load_model

        model = load_model(settings.model)
    store = store or CaseStore(settings.db)
    temporary_workdir = settings.workdir is None
    workdir = (
        Path(tempfile.mkdtemp(prefix="fakescope-server-"))
        if settings.workdir is None
        else settings.workdir
    )
    uploads = UploadStore(workdir, settings.max_workdir_bytes)
    scanner = Scanner(
        model,
        store,
        max_pixels=settings.max_pixels,
        max_file_bytes=settings.max_file_bytes,
        video_scanner=video_scanner or find_video_scanner(),
    )
    queue = JobQueue(
        scanner.scan_batch,
        workers=settings.workers,
        batch_size=settings.batch_size,
        max_queued_files=settings.max_queued_files,
        max_finished_jobs=settings.max_finished_jobs,
    )
    model_info = model_summary(model)
    edits = OnDemandLocalizer(settings.localizer, localizer)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        # An ASGI host may run the lifespan more than once (test clients do): start afresh.
        uploads.folder.mkdir(parents=True, exist_ok=True)
        yield
        queue.shutdown()
        if temporary_workdir:
            shutil.rmtree(workdir, ignore_errors=True)

    app = FastAPIOffline(
        title="fakescope",
        version=__version__,
        description="Tells whether images and videos were generated or manipulated by AI, "
        "with calibrated verdicts and the evidence behind them. Every result is stored in the "
        "case database under the file's SHA-256.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.queue = queue
    app.state.store = store
    app.state.uploads = uploads
    app.state.workdir = workdir
    app.add_middleware(
        BodyGuardMiddleware,
        max_bytes=settings.max_request_bytes,
        timeout_s=settings.upload_timeout_s,
    )

    @app.exception_handler(RequestBodyTooLarge)
    async def _too_large(_request: Request, _exc: RequestBodyTooLarge) -> JSONResponse:
        detail = f"request body over the limit of {settings.max_request_bytes} bytes"
        return JSONResponse({"detail": detail}, status_code=413)

    @app.exception_handler(RequestBodyTimeout)
    async def _timeout(_request: Request, _exc: RequestBodyTimeout) -> JSONResponse:
        detail = f"the request body did not arrive within {settings.upload_timeout_s:g} s"
        return JSONResponse({"detail": detail}, status_code=408, headers={"Connection": "close"})

    @app.exception_handler(QueueFullError)
    async def _queue_full(_request: Request, exc: QueueFullError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=429, headers={"Retry-After": "5"})

    def require_api_key(key: ApiKey) -> None:
        if settings.api_key is None:
            return
        if key is None or not hmac.compare_digest(key.encode(), settings.api_key.encode()):
            raise HTTPException(
                status_code=401,
                detail="missing or wrong API key (send it in the X-API-Key header)",
                headers={"WWW-Authenticate": "ApiKey"},
            )

    api = APIRouter(prefix="/v1", dependencies=[Depends(require_api_key)])
    public = APIRouter(prefix="/v1")

    # -- reading requests ------------------------------------------------------------------

    async def read_scan_request(request: Request) -> list[ScanItem]:
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type == "multipart/form-data":
            return await _read_uploads(request)
        if content_type == "application/json":
            return await _read_paths(request)
        raise HTTPException(
            status_code=415, detail="send files as multipart/form-data or paths as JSON"
        )

    async def _read_uploads(request: Request) -> list[ScanItem]:
        form = await request.form(
            max_files=settings.max_files_per_request, max_fields=settings.max_files_per_request
        )
        try:
            uploads_in_form = [
                value for _, value in form.multi_items() if isinstance(value, UploadFile)
            ]
            if not uploads_in_form:
                raise HTTPException(status_code=422, detail="no file in the request ('files')")
            items = []
            for upload in uploads_in_form:
                stored = await run_in_threadpool(
                    uploads.save, upload.file, upload.filename, settings.max_file_bytes
                )
                sighting = Sighting(f"upload:{stored.name}", stored.size, None, "upload")
                items.append(
                    ScanItem(
                        name=stored.name,
                        path=stored.path,
                        sha256=stored.sha256,
                        kind=stored.kind,
                        error=stored.error,
                        sighting=sighting,
                    )
                )
            return items
        finally:
            await form.close()

    async def _read_paths(request: Request) -> list[ScanItem]:
        try:
            body = PathsRequest.model_validate(await request.json())
        except ValueError as exc:  # JSON decode errors and ValidationError alike
            detail = exc.errors(include_url=False) if isinstance(exc, ValidationError) else str(exc)
            raise HTTPException(status_code=422, detail=str(detail)) from exc
        if not settings.allowed_path_roots:
            raise HTTPException(
                status_code=403,
                detail="server-side paths are disabled (start the server with --allow-path)",
            )
        return await run_in_threadpool(_expand_paths, body.paths)

    def _expand_paths(paths: list[str]) -> list[ScanItem]:
        for path in paths:
            if not path_is_allowed(path, settings.allowed_path_roots):
                raise HTTPException(
                    status_code=403, detail=f"{path!r} is outside the allowed folders"
                )
        items: list[ScanItem] = []
        for entry in iter_input_files(paths):
            if len(items) >= settings.max_queued_files:
                raise HTTPException(
                    status_code=422,
                    detail=f"more than {settings.max_queued_files} files; scan folders in parts",
                )
            if entry.error is None and not path_is_allowed(entry.path, settings.allowed_path_roots):
                continue  # a symlink inside an allowed folder that points out of it
            sighting = None
            try:
                info = Path(entry.path).stat()
                sighting = Sighting(entry.path, info.st_size, info.st_mtime_ns, "server")
            except OSError:
                pass
            items.append(
                ScanItem(
                    name=entry.path, path=Path(entry.path), error=entry.error, sighting=sighting
                )
            )
        if not items:
            raise HTTPException(status_code=422, detail="no file found under the given paths")
        return items

    def job_status(job: Job) -> dict[str, Any]:
        done = job.state == "done"
        return {
            "job_id": job.id,
            "status": job.state,
            "total": job.total,
            "completed": job.completed,
            "created_at": job.created_at,
            "finished_at": job.finished_at,
            "status_url": f"/v1/jobs/{job.id}",
            "results": [_json_safe(r.to_dict()) for r in job.results if r is not None]
            if done
            else [],
        }

    # -- scanning --------------------------------------------------------------------------

    @api.post(
        "/scan",
        response_model=ScanResponse,
        openapi_extra=SCAN_REQUEST_BODY,
        responses={
            202: {"model": JobStatus, "description": "Still running: poll the job."},
            **_error_responses(400, 401, 403, 408, 413, 415, 422, 429),
        },
        summary="Scan files and wait for the results",
    )
    async def scan(
        request: Request,
        rescan: Rescan = False,
    ) -> Any:
        """One result per file, in order. Bad files get an error row; the others are scanned.

        Waits up to the server's scan timeout; past it, answers 202 with the job to poll (the
        work goes on and every result lands in the case database)."""
        items = await read_scan_request(request)
        job = queue.submit(items, rescan=rescan)
        try:
            results = await asyncio.wait_for(
                asyncio.shield(asyncio.wrap_future(job.future)), settings.scan_timeout_s
            )
        except TimeoutError:
            return JSONResponse(
                job_status(job), status_code=202, headers={"Location": f"/v1/jobs/{job.id}"}
            )
        return {
            "job_id": job.id,
            "model": scanner.model_name,
            "results": [_json_safe(r.to_dict()) for r in results],
        }

    @api.post(
        "/jobs",
        response_model=JobStatus,
        status_code=202,
        openapi_extra=SCAN_REQUEST_BODY,
        responses=_error_responses(400, 401, 403, 408, 413, 415, 422, 429),
        summary="Queue files for scanning; poll the job for the results",
    )
    async def create_job(
        request: Request,
        response: Response,
        rescan: Rescan = False,
    ) -> Any:
        items = await read_scan_request(request)
        job = queue.submit(items, rescan=rescan)
        response.headers["Location"] = f"/v1/jobs/{job.id}"
        return job_status(job)

    @api.get(
        "/jobs/{job_id}",
        response_model=JobStatus,
        responses=_error_responses(401, 404, 422),
        summary="A job's progress, and its results once done",
    )
    def get_job(job_id: JobId) -> Any:
        job = queue.get(job_id)
        if job is None:
            raise HTTPException(status_code=404, detail="no such job (or finished long ago)")
        return job_status(job)

    # -- results and their views -----------------------------------------------------------

    def stored_or_404(sha256: str) -> Any:
        stored = store.get(sha256.lower())
        if stored is None:
            raise HTTPException(status_code=404, detail="no result for this SHA-256")
        return stored

    @api.get(
        "/results/{sha256}",
        response_model=ScanResultModel,
        responses=_error_responses(401, 404, 422),
        summary="The stored result of a file, by its SHA-256",
    )
    def get_result(sha256: Sha256) -> Any:
        return _json_safe(stored_or_404(sha256).result.to_dict())

    @api.get(
        "/results/{sha256}/report",
        response_model=Report,
        responses=_error_responses(401, 404, 422),
        summary="A result with its plain-language explanation and the views the page shows",
    )
    def get_report(sha256: Sha256) -> Any:
        sha256 = sha256.lower()
        stored = stored_or_404(sha256)
        result = _json_safe(stored.result.to_dict())
        evidence = stored.result.evidence or {}
        media = "video" if isinstance(evidence.get("video"), dict) else "image"
        same_model = stored.model == scanner.model_name
        kept = uploads.path_of(sha256) is not None and media == "image" and not result["error"]
        base = f"/v1/results/{sha256}"
        overlays = []
        if views.localization_map(evidence) is not None:
            overlays.append(
                OverlayInfo(
                    kind="localization",
                    url=f"{base}/localization.png",
                    caption="Where the detector located manipulation: the stronger the red, the "
                    "more suspicious the region.",
                )
            )
        if kept and edits.unavailable_reason() is None:
            overlays.append(
                OverlayInfo(
                    kind="edits",
                    url=f"{base}/edits.png",
                    caption=f"Where the {edits.name} localizer finds edited regions (splices, "
                    "copy-moves, inpainting, warps), computed when opened: the stronger the "
                    "red, the more likely that pixel was changed. A trained network's guess, "
                    "not proof; it also flags some untouched photos.",
                )
            )
        if kept:
            overlays.append(
                OverlayInfo(
                    kind="residual",
                    url=f"{base}/residual.png",
                    caption="Residual view (not a detector's map): the image minus a 2x "
                    "down-and-up copy of itself. Camera detail looks like fine noise; regular "
                    "grids or flat patches can be traces of generator upsampling.",
                )
            )
        return {
            "result": result,
            "media": media,
            "model": stored.model,
            "thresholds": model_info if same_model else None,
            "explanation": explain(result, model.calibration if same_model else None),
            "seen_as": store.paths_of(sha256, limit=20),
            "original_url": f"{base}/original.png" if kept else None,
            "spectrum_url": f"{base}/spectrum" if kept else None,
            "overlays": overlays,
        }

    @lru_cache(maxsize=2)  # decoded pixels: the page asks for three views of one image
    def decoded_upload(path: Path) -> LoadedImage | None:
        # Keyed by the kept file, whose name is its content's hash: the entry never goes stale.
        try:
            data = read_file_bytes(path, max_bytes=settings.max_file_bytes)
            return decode_image_bytes(data, max_pixels=settings.max_pixels)
        except InputError:
            return None

    def decoded_or_404(sha256: str) -> LoadedImage:
        path = uploads.path_of(sha256.lower())
        image = None if path is None else decoded_upload(path)
        if image is None:
            raise HTTPException(
                status_code=404, detail="the original of this result is not kept on the server"
            )
        return image

    @lru_cache(maxsize=32)
    def rendered_view(sha256: str, view: str) -> bytes:
        pixels = decoded_or_404(sha256).pixels
        return views.original_png(pixels) if view == "original" else views.residual_png(pixels)

    png_response = {200: {"content": {"image/png": {}}, "description": "A PNG image."}}

    @api.get(
        "/results/{sha256}/original.png",
        response_class=Response,
        responses={**png_response, **_error_responses(401, 404, 422)},
        summary="The uploaded image, decoded and upright (at most 1024 px)",
    )
    def get_original(sha256: Sha256) -> Response:
        return Response(rendered_view(sha256.lower(), "original"), media_type="image/png")

    @api.get(
        "/results/{sha256}/residual.png",
        response_class=Response,
        responses={**png_response, **_error_responses(401, 404, 422)},
        summary="The residual view of the uploaded image (see the report's caption)",
    )
    def get_residual(sha256: Sha256) -> Response:
        return Response(rendered_view(sha256.lower(), "residual"), media_type="image/png")

    @api.get(
        "/results/{sha256}/localization.png",
        response_class=Response,
        responses={**png_response, **_error_responses(401, 404, 422)},
        summary="The result's localization map as a transparent red overlay",
    )
    def get_localization(sha256: Sha256) -> Response:
        evidence = stored_or_404(sha256).result.evidence or {}
        localization = views.localization_map(evidence)
        if localization is None:
            raise HTTPException(status_code=404, detail="this result carries no localization")
        height, width = localization.values.shape
        # The image's size: in the ``file`` report of grouped evidence, or at the top level.
        file_report = evidence.get("file") if isinstance(evidence.get("file"), dict) else evidence
        size = (
            int(file_report.get("width") or width),
            int(file_report.get("height") or height),
        )
        return Response(views.heatmap_png(localization, size), media_type="image/png")

    def localized_or_error(sha256: str) -> LocalizedUpload:
        try:
            # Decoded only when not remembered: the JSON and the PNG share one localization.
            return edits.localize(sha256, lambda: decoded_or_404(sha256))
        except UnavailableError as exc:
            raise HTTPException(status_code=503, detail=str(exc)) from exc
        except (ValueError, FakescopeError) as exc:
            raise HTTPException(
                status_code=422, detail=f"this image cannot be localized: {exc}"
            ) from exc

    @api.get(
        "/results/{sha256}/edits",
        response_model=EditLocalization,
        responses=_error_responses(401, 404, 422, 503),
        summary="Where the server's localizer finds edited regions in the kept upload",
    )
    def get_edits(sha256: Sha256) -> Any:
        """Computed on the first request (seconds per megapixel on a CPU), then remembered for
        a few files. 404 when the upload is not kept; 503 when the server has no localizer."""
        sha256 = sha256.lower()
        localized = localized_or_error(sha256)
        return {
            **_json_safe(localized.summary),
            "localizer": str(edits.name),
            "overlay_url": f"/v1/results/{sha256}/edits.png",
        }

    @api.get(
        "/results/{sha256}/edits.png",
        response_class=Response,
        responses={**png_response, **_error_responses(401, 404, 422, 503)},
        summary="The edits heat map as a transparent red overlay (at most 1024 px)",
    )
    def get_edits_png(sha256: Sha256) -> Response:
        overlay = localized_or_error(sha256.lower()).overlay_png
        return Response(overlay, media_type="image/png")

    @api.get(
        "/results/{sha256}/spectrum",
        response_model=Spectrum,
        responses=_error_responses(401, 404, 422),
        summary="The azimuthally averaged log spectrum of the uploaded image",
    )
    def get_spectrum(sha256: Sha256) -> Any:
        return views.spectrum_payload(decoded_or_404(sha256).pixels)

    # -- about the server ------------------------------------------------------------------

    @api.get(
        "/model",
        response_model=ModelInfo,
        responses=_error_responses(401),
        summary="The serving model and its calibrated thresholds",
    )
    def get_model() -> Any:
        return model_info

    @public.get("/health", response_model=HealthStatus, summary="Liveness, no key needed")
    async def health() -> Any:  # no blocking call: served on the event loop, no thread hop
        return {
            "status": "ok",
            "version": __version__,
            "model": scanner.model_name,
            "database": store.dialect,
            "workers": queue.workers,
            "queued_files": queue.queued_files,
        }

    app.include_router(public)
    app.include_router(api)

    # -- the page --------------------------------------------------------------------------

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", headers=PAGE_SECURITY_HEADERS)

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    return app
