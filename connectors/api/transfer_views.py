"""Import and export in the documented JSON shape; secrets follow the export rules."""

from __future__ import annotations

import json
from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from connectors.api import schema
from connectors.api.base import ApiView
from connectors.api.permissions import record_refusal
from connectors.api.problems import Problem, validation_problem
from connectors.api.views import PROBLEM, PROBLEM_TYPE, REFUSALS
from connectors.transfer import (
    ExportRefused,
    ImportFileError,
    PassphraseNeeded,
    PassphraseWrong,
    connectors_export,
    connectors_import_text,
)

MAX_IMPORT_BYTES = 5 * 1024 * 1024
EXPORT_SECRETS_PERMISSION = "connectors.export_secrets"
PASSPHRASE = OpenApiParameter(
    "X-Passphrase",
    str,
    location=OpenApiParameter.HEADER,
    required=False,
    description="Encrypted files: the passphrase (import), or the one to encrypt with (export).",
)


class ImportView(ApiView):
    # The page's permissions: an import creates and edits connectors.
    required_permissions = {
        "POST": (
            "connectors.import_connectors",
            "connectors.add_connector",
            "connectors.change_connector",
        )
    }

    @extend_schema(
        operation_id="import",
        request=schema.ConnectorsFileSerializer,
        parameters=[PASSPHRASE],
        responses={
            200: schema.ImportResultSerializer,
            (400, PROBLEM_TYPE): PROBLEM,
            (413, PROBLEM_TYPE): PROBLEM,
            **REFUSALS,
        },
    )
    def post(self, request: Request) -> Response:
        if int(request.META.get("CONTENT_LENGTH") or 0) > MAX_IMPORT_BYTES:
            raise Problem(
                status_code=413, title="Too large", detail="The file is larger than 5 MiB."
            )
        try:
            result = connectors_import_text(
                text=json.dumps(request.data),
                user=request.user,
                passphrase=request.headers.get("X-Passphrase") or None,
            )
        except (PassphraseNeeded, PassphraseWrong) as exc:
            raise validation_problem(
                [{"field": "X-Passphrase", "label": "Passphrase", "message": str(exc)}]
            ) from None
        except ImportFileError as exc:
            raise validation_problem(
                [{"field": "request", "label": "File", "message": str(exc)}]
            ) from None
        if not result.ok:
            raise validation_problem(
                [
                    {"field": f"{e.connector}.{e.field}", "label": e.field, "message": e.message}
                    for e in result.errors
                ]
            )
        return Response(
            {"created": result.created, "updated": result.updated, "unchanged": result.unchanged}
        )


class ExportView(ApiView):
    required_permissions = {"GET": ("connectors.import_connectors",)}

    @extend_schema(
        operation_id="export",
        parameters=[
            OpenApiParameter(
                "include_secrets",
                bool,
                description="Needs connectors.export_secrets and X-Passphrase: the answer is "
                "then the encrypted envelope.",
            ),
            PASSPHRASE,
        ],
        responses={200: OpenApiTypes.OBJECT, (400, PROBLEM_TYPE): PROBLEM, **REFUSALS},
    )
    def get(self, request: Request) -> Response:
        include_secrets = request.query_params.get("include_secrets", "").lower() in {"1", "true"}
        if include_secrets and not request.user.has_perm(EXPORT_SECRETS_PERMISSION):
            record_refusal(request, self, (EXPORT_SECRETS_PERMISSION,))
            raise Problem(
                status_code=status.HTTP_403_FORBIDDEN,
                title="Permission denied",
                detail="Exporting secrets needs its own permission, which no role has.",
                kind="forbidden",
            )
        passphrase = request.headers.get("X-Passphrase") if include_secrets else None
        try:
            payload: Any = connectors_export(
                include_secrets=include_secrets, user=request.user, passphrase=passphrase
            )
        except ExportRefused as exc:
            raise validation_problem(
                [{"field": "X-Passphrase", "label": "Passphrase", "message": str(exc)}]
            ) from None
        return Response(payload, headers={"Cache-Control": "no-store"})
