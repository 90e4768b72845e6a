"""``fakescope serve``: the scan API, batch jobs and the web page on top of the pipeline.

Needs the ``server`` extra (FastAPI, uvicorn, python-multipart, SQLAlchemy). The names below
load on first use, so modules without web dependencies (``explain``, ``uploads``, ``views``)
import without them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fakescope.server.app import create_app
    from fakescope.server.settings import ServerSettings

__all__ = ["ServerSettings", "create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from fakescope.server.app import create_app

        return create_app
    if name == "ServerSettings":
        from fakescope.server.settings import ServerSettings

        return ServerSettings
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
