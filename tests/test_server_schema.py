"""Schemathesis against the server's OpenAPI document: generated requests for every operation,
checked for server errors and for responses that do not match the schema.

Bounded (a few examples per operation, derandomized) so that it runs in well under a minute.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("sqlalchemy")
schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, settings  # noqa: E402

from fakescope.server import ServerSettings, create_app  # noqa: E402

API_KEY = "schema-test-key"
_WORKDIR = Path(tempfile.mkdtemp(prefix="fakescope-schema-"))
# With a key, so that the checks also see every protected route refuse a request without it.
APP = create_app(
    ServerSettings(
        db=str(_WORKDIR / "cases.sqlite"), workdir=_WORKDIR / "work", workers=1, api_key=API_KEY
    )
)
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)


@schema.parametrize()
@settings(
    max_examples=8,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_api_matches_its_openapi_document(case):
    case.call_and_validate(headers={"X-API-Key": API_KEY})
