"""``fakescope serve``: the API and the web page, with uvicorn."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from fakescope.cli.common import stderr
from fakescope.localizers import FIELD_LOCALIZER
from fakescope.models import DEFAULT_MODEL
from fakescope.store import DEFAULT_DB

_INSTALL_HINT = "the server needs its extra: pip install 'fakescope[server]'"


def serve(
    host: Annotated[
        str, typer.Option(help="Address to listen on; 0.0.0.0 exposes it to the network.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
    model: Annotated[
        str, typer.Option("--model", "-m", help="A model folder or a bundled model name.")
    ] = DEFAULT_MODEL,
    localizer: Annotated[
        str,
        typer.Option(
            "--localizer",
            "-l",
            help="Localizer run on demand on kept uploads to show edited regions (a bundled "
            "name or a folder); 'none' switches it off.",
        ),
    ] = FIELD_LOCALIZER,
    db: Annotated[
        str,
        typer.Option(help="Case database: a SQLite file, or postgresql://user@host/dbname."),
    ] = DEFAULT_DB,
    workdir: Annotated[
        Path | None,
        typer.Option(
            file_okay=False,
            help="Keep uploads here (named by SHA-256); default: a temporary folder removed "
            "at exit.",
        ),
    ] = None,
    api_key: Annotated[
        str | None,
        typer.Option(
            envvar="FAKESCOPE_API_KEY",
            help="Require this key in X-API-Key (better set through FAKESCOPE_API_KEY).",
            show_default=False,
        ),
    ] = None,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Scanning threads.")] = 2,
    max_file_mb: Annotated[float, typer.Option(min=0.001, help="Per-file limit.")] = 256.0,
    max_request_mb: Annotated[float, typer.Option(min=0.001, help="Per-request limit.")] = 512.0,
    max_pixels: Annotated[int, typer.Option(min=1, help="Decompression-bomb guard.")] = 50_000_000,
    scan_timeout: Annotated[
        float, typer.Option(min=0.1, help="Seconds POST /v1/scan waits before answering 202.")
    ] = 60.0,
    upload_timeout: Annotated[
        float, typer.Option(min=0.1, help="Seconds a client has to send its request body.")
    ] = 120.0,
    allow_path: Annotated[
        list[Path],
        typer.Option(
            exists=True,
            file_okay=False,
            help="A folder whose files POST /v1/scan may read by path (repeatable).",
        ),
    ] = [],  # noqa: B006 - typer reads the default, it is never mutated
) -> None:
    """Serve the scan API (docs at /docs) and the web page (at /)."""
    try:
        import uvicorn

        from fakescope.server import ServerSettings, create_app
        from fakescope.store.db import StoreError
    except ImportError as exc:
        stderr.print(f"[red]error:[/red] {_INSTALL_HINT} ({exc})")
        raise typer.Exit(1) from exc
    from fakescope.errors import FakescopeError

    mib = 1024 * 1024
    settings = ServerSettings(
        model=model,
        localizer=None if localizer.lower() == "none" else localizer,
        db=db,
        workdir=workdir,
        api_key=api_key or None,
        workers=workers,
        max_file_bytes=int(max_file_mb * mib),
        max_request_bytes=int(max_request_mb * mib),
        max_pixels=max_pixels,
        scan_timeout_s=scan_timeout,
        upload_timeout_s=upload_timeout,
        allowed_path_roots=list(allow_path),
    )
    try:
        app = create_app(settings)
    except StoreError as exc:
        raise typer.BadParameter(str(exc), param_hint="--db") from exc
    except FakescopeError as exc:
        raise typer.BadParameter(str(exc), param_hint="--model") from exc
    if host not in {"127.0.0.1", "localhost", "::1"} and settings.api_key is None:
        stderr.print(
            f"[yellow]warning:[/yellow] listening on {host} without an API key: anyone who can "
            "reach this port can scan and read results (set FAKESCOPE_API_KEY)"
        )
    stderr.print(f"fakescope on http://{host}:{port}/ (API docs: /docs), database {db}")
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level="warning",
        # Idle keep-alive connections are dropped after this, so they cannot pile up.
        timeout_keep_alive=10,
        # Lets the queue finish the batches it is running when the server is stopped.
        timeout_graceful_shutdown=30,
    )
