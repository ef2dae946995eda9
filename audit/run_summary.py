"""The documented JSON shape of one test run: `connector_test --json` and the API print it."""

from __future__ import annotations

from typing import Any

from audit.models import TestRun


def testrun_summary(run: TestRun) -> dict[str, Any]:
    """The documented JSON shape of a test run (token facts only, never the token)."""
    token = run.token or None
    return {
        "connector": run.connector_name,
        "ok": run.ok,
        "outcome": run.outcome,
        "message": run.message,
        "client_authentication_used": run.client_authentication_used or None,
        "attempts": [
            {
                "client_authentication": a.client_authentication,
                "status_code": a.status_code,
                "outcome": a.outcome,
                "message": a.message,
                "duration_ms": a.duration_ms,
            }
            for a in run.attempts.all()
        ],
        "token": (
            {
                "token_type": token.get("token_type"),
                "expires_in": token.get("expires_in"),
                "scope": token.get("scope"),
                "refresh_token_issued": token.get("refresh_token_issued"),
            }
            if token
            else None
        ),
    }
