"""Schemathesis against the app's own OpenAPI schema, in process: no 5xx, nothing the schema does not promise.

(Schemathesis' pytest plugin, `from_fixture`/`parametrize`, needs a pytest attribute that pytest 9 removed, so
the cases are drawn with Hypothesis from `schema.as_strategy()` instead: the same generation and checks.)
"""

from __future__ import annotations

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from schemathesis.generation.modes import GenerationMode

from facegan.serve.app import MAX_PIXELS


def within_pixel_limit(case: schemathesis.Case) -> bool:
    """The one rule OpenAPI cannot state (count × size² ≤ MAX_PIXELS, in the endpoints' descriptions)."""
    query = case.query or {}
    try:
        # defaults: n=16 faces, steps=8 frames, one face; size = the test model's 32 px
        count = int(query.get("n", 16)) if case.path.endswith("/faces") else int(query.get("steps", 8))
        count = 1 if case.path.endswith("/face") else count
        size = int(query.get("size", 32))
    except (TypeError, ValueError):
        return True
    return count * size * size <= MAX_PIXELS


@pytest.mark.slow
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_api_conforms_to_its_schema(app: FastAPI, mode: GenerationMode) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = {f"{op.method.upper()} {op.path}" for op in (r.ok() for r in schema.get_all_operations())}
    assert {"GET /api/faces", "GET /api/face", "GET /api/interpolate", "GET /api/info", "GET /api/health"} <= operations
    for result in schema.get_all_operations():
        operation = result.ok()
        if mode is GenerationMode.NEGATIVE and not len(operation.query):
            continue  # /api/info and /api/health take no parameters: there is nothing invalid to send
        strategy = operation.as_strategy(mode)
        if mode is GenerationMode.POSITIVE:
            # Schema-valid requests past the pixel limit get 422 by design (tested in test_serve_api.py); leave
            # them out here so schemathesis' check that valid data is accepted stays on for everything else.
            strategy = strategy.filter(within_pixel_limit)

        @given(case=strategy)
        @settings(max_examples=12, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        def check(case: schemathesis.Case) -> None:
            case.call_and_validate()

        check()
