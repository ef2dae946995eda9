"""Optimistic concurrency as HTTP does it: an ETag per version, If-Match on every change."""

from __future__ import annotations

from typing import Any

from rest_framework import status

from connectors.api.problems import Problem
from connectors.models import Connector


def etag_of(connector: Connector) -> str:
    """The strong ETag of a connector's stored version."""
    return f'"{connector.pk}-{connector.version}"'


def _tags(header: str) -> list[str]:
    return [tag.strip().removeprefix("W/") for tag in header.split(",") if tag.strip()]


def if_match_version(request: Any, connector: Connector) -> int:
    """The version the client last saw, from If-Match: 428 when missing, 412 when stale."""
    header = request.headers.get("If-Match", "")
    if not header.strip():
        raise Problem(
            status_code=status.HTTP_428_PRECONDITION_REQUIRED,
            title="If-Match required",
            detail="Send If-Match with the ETag of the version you read (GET it first), so "
            "that nobody's newer change is overwritten.",
            kind="precondition-required",
        )
    tags = _tags(header)
    if "*" in tags or etag_of(connector) in tags:
        return connector.version
    raise stale_problem(connector)


def stale_problem(connector: Connector) -> Problem:
    who = connector.updated_by.get_username() if connector.updated_by else "someone"
    return Problem(
        status_code=status.HTTP_412_PRECONDITION_FAILED,
        title="The connector changed since you read it",
        detail=f"{connector.name} was changed by {who} (now {etag_of(connector)}). Nothing was "
        "saved: GET it again, then make your change on the new version.",
        kind="stale",
        headers={"ETag": etag_of(connector)},
    )
