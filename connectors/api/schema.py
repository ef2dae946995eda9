"""Serializers that describe the API's shapes for the OpenAPI schema (drf-spectacular).

They document; they do not validate. Values are judged by connectors.rules (see inputs.py), so
no rule is written twice. Examples never carry a secret.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import serializers

from connectors.domain import ALL_SECRET_FIELDS, CONNECTOR_FIELDS

# The health states and auth configs, as the list's filters take them.
from connectors.health import HealthState
from connectors.models import AuthConfig, Connector
from connectors.models_batch import Batch, BatchItem
from connectors.oauth_http.assertions import MAX_TTL_SECONDS


class StoredSerializer(serializers.Serializer):
    stored = serializers.BooleanField()


class ProblemFieldErrorSerializer(serializers.Serializer):
    field = serializers.CharField(
        help_text="The JSON key, e.g. base_url or additional_headers[0].key."
    )
    label = serializers.CharField(help_text="The field's label on the form.")
    message = serializers.CharField(help_text="The form's message.")


class ProblemSerializer(serializers.Serializer):
    """RFC 9457 problem details."""

    type = serializers.CharField()
    title = serializers.CharField()
    status = serializers.IntegerField()
    detail = serializers.CharField()
    instance = serializers.CharField()
    errors = ProblemFieldErrorSerializer(many=True, required=False)


class HealthSerializer(serializers.Serializer):
    state = serializers.ChoiceField(choices=[s.value for s in HealthState])
    last_tested_at = serializers.DateTimeField(allow_null=True)
    last_ok = serializers.BooleanField(allow_null=True)
    last_outcome = serializers.CharField(allow_null=True)
    failing_since = serializers.DateTimeField(allow_null=True)
    consecutive_failures = serializers.IntegerField()


class ConnectorSummarySerializer(serializers.Serializer):
    name = serializers.CharField()
    display_name = serializers.CharField(allow_blank=True)
    base_url = serializers.CharField(allow_blank=True)
    enabled = serializers.BooleanField()
    auth_config = serializers.ChoiceField(choices=AuthConfig.values)
    owner_team = serializers.CharField(allow_blank=True)
    client_secret_expires_on = serializers.DateField(allow_null=True)
    updated_at = serializers.DateTimeField()
    health = HealthSerializer()


class RowOutSerializer(serializers.Serializer):
    key = serializers.CharField()
    value = serializers.JSONField(help_text='Text, or {"stored": true} for a sensitive row.')
    sensitive = serializers.BooleanField()


class RowInSerializer(serializers.Serializer):
    key = serializers.CharField(allow_blank=True, required=False)
    value = serializers.CharField(
        allow_blank=True,
        required=False,
        help_text="For a sensitive row, blank keeps the stored value.",
    )
    sensitive = serializers.BooleanField(required=False)


def _model_field(name: str, *, write: bool) -> serializers.Field:
    """A schema field for one connector field, typed and labelled as the model has it."""
    field = Connector._field(name)
    label = str(field.verbose_name)
    help_text = str(field.help_text or "")
    if name in ALL_SECRET_FIELDS:
        if write:
            return serializers.CharField(
                required=False,
                allow_blank=True,
                allow_null=True,
                label=label,
                help_text="Write-only. Omitted or blank keeps the stored one; null clears it.",
            )
        return StoredSerializer(allow_null=True, label=label, help_text='{"stored": true} or null')
    if name == "enabled":
        return serializers.BooleanField(required=False if write else True, label=label)
    if name == "jwt_ttl_seconds":
        return serializers.IntegerField(
            required=not write,
            min_value=1,
            max_value=MAX_TTL_SECONDS,
            label=label,
            help_text=help_text,
        )
    if name == "client_secret_expires_on":
        return serializers.DateField(required=False, allow_null=True, label=label)
    if field.choices:
        choices = [value for value, _ in field.choices]
        return serializers.ChoiceField(
            choices=choices, required=False if write else True, label=label, allow_blank=write
        )
    return serializers.CharField(
        required=name == "name" and write,
        allow_blank=name != "name" or not write,
        allow_null=write and name != "name",
        label=label,
        help_text=help_text,
    )


def _fields(*, write: bool) -> dict[str, Any]:
    fields: dict[str, Any] = {name: _model_field(name, write=write) for name in CONNECTOR_FIELDS}
    row = RowInSerializer if write else RowOutSerializer
    fields["additional_headers"] = row(many=True, required=False)
    fields["additional_request_data"] = row(many=True, required=False)
    return fields


ConnectorInSerializer = type(
    "ConnectorInSerializer",
    (serializers.Serializer,),
    {
        **_fields(write=True),
        "__doc__": "A connector to create or change (PATCH: only what changes).",
    },
)
ConnectorSerializer = type(
    "ConnectorSerializer",
    (serializers.Serializer,),
    {
        **_fields(write=False),
        "version": serializers.IntegerField(),
        "created_at": serializers.DateTimeField(),
        "updated_at": serializers.DateTimeField(),
        "health": HealthSerializer(),
        "__doc__": 'A connector; each secret only as {"stored": true} (or null when none).',
    },
)


class TestAttemptSummarySerializer(serializers.Serializer):
    client_authentication = serializers.CharField(allow_blank=True)
    status_code = serializers.IntegerField(allow_null=True)
    outcome = serializers.CharField()
    message = serializers.CharField(allow_blank=True)
    duration_ms = serializers.IntegerField()


class TokenFactsSerializer(serializers.Serializer):
    token_type = serializers.JSONField(allow_null=True)
    expires_in = serializers.JSONField(allow_null=True)
    scope = serializers.JSONField(allow_null=True)
    refresh_token_issued = serializers.JSONField(allow_null=True)


class TestSummarySerializer(serializers.Serializer):
    """The same object as `manage.py connector_test NAME --json`."""

    connector = serializers.CharField()
    ok = serializers.BooleanField()
    outcome = serializers.CharField()
    message = serializers.CharField(allow_blank=True)
    client_authentication_used = serializers.CharField(allow_null=True)
    attempts = TestAttemptSummarySerializer(many=True)
    token = TokenFactsSerializer(allow_null=True)


class AttemptSerializer(serializers.Serializer):
    position = serializers.IntegerField()
    step = serializers.CharField()
    client_authentication = serializers.CharField(allow_blank=True)
    method = serializers.CharField()
    url = serializers.CharField()
    status_code = serializers.IntegerField(allow_null=True)
    outcome = serializers.CharField()
    message = serializers.CharField(allow_blank=True)
    duration_ms = serializers.IntegerField()


class RunSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    connector = serializers.CharField()
    source = serializers.CharField()
    username = serializers.CharField(allow_blank=True)
    started_at = serializers.DateTimeField()
    duration_ms = serializers.IntegerField()
    ok = serializers.BooleanField()
    outcome = serializers.CharField()
    message = serializers.CharField(allow_blank=True)
    hint = serializers.CharField(allow_blank=True)
    client_authentication_used = serializers.CharField(allow_null=True)
    attempts = AttemptSerializer(many=True)


class AuditEventSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    kind = serializers.CharField()
    action = serializers.CharField()
    user_id = serializers.IntegerField(allow_null=True)
    username = serializers.CharField(allow_blank=True)
    connector_id = serializers.IntegerField(allow_null=True)
    connector_name = serializers.CharField(allow_blank=True)
    source = serializers.CharField(allow_blank=True)
    outcome = serializers.CharField(allow_blank=True)
    summary = serializers.CharField(allow_blank=True)


class AuditEventDetailSerializer(AuditEventSerializer):
    details = serializers.JSONField()
    test_run_id = serializers.IntegerField(allow_null=True)
    hash = serializers.CharField()


class AuditPageSerializer(serializers.Serializer):
    next = serializers.CharField(allow_null=True, help_text="Older records (keyset cursor).")
    previous = serializers.CharField(allow_null=True, help_text="Newer records.")
    results = AuditEventSerializer(many=True)


class ImportResultSerializer(serializers.Serializer):
    created = serializers.ListField(child=serializers.CharField())
    updated = serializers.ListField(child=serializers.CharField())
    unchanged = serializers.ListField(child=serializers.CharField())


class ConnectorsFileSerializer(serializers.Serializer):
    """The documented JSON shape (README "Import and export"), or its encrypted envelope."""

    connectors = serializers.ListField(child=serializers.DictField(), required=False)


class TokenScheme(OpenApiAuthenticationExtension):
    """Personal API tokens in the schema: `Authorization: Token <token>`."""

    target_class = "connectors.api.auth.AuditedTokenAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": 'A personal API token, sent as "Token <token>".',
        }


class ConnectorPageSerializer(serializers.Serializer):
    """A cursor page of the list: follow `next` until it is null."""

    next = serializers.CharField(allow_null=True)
    previous = serializers.CharField(allow_null=True)
    results = ConnectorSummarySerializer(many=True)


class RunPageSerializer(serializers.Serializer):
    next = serializers.CharField(allow_null=True)
    previous = serializers.CharField(allow_null=True)
    results = RunSerializer(many=True)


class BatchStartSerializer(serializers.Serializer):
    """connectors_test_all's filter: every connector matching it (all when empty)."""

    connector = serializers.ListField(
        child=serializers.CharField(),
        required=False,
        allow_null=True,
        help_text="Connector names to test (default: every connector matching the filter).",
    )
    health = serializers.ChoiceField(
        choices=[s.value for s in HealthState], required=False, allow_null=True
    )
    search = serializers.CharField(
        required=False,
        allow_blank=True,
        allow_null=True,
        help_text="Name, display name or base URL text.",
    )


class BatchItemSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    connector = serializers.CharField()
    url = serializers.CharField(help_text="The connector's page.")
    state = serializers.ChoiceField(choices=BatchItem.State.values)
    state_label = serializers.CharField()
    ok = serializers.BooleanField(allow_null=True)
    outcome = serializers.CharField(allow_blank=True, allow_null=True)
    outcome_label = serializers.CharField(allow_blank=True, allow_null=True)
    duration_ms = serializers.IntegerField(allow_null=True)


class BatchProgressSerializer(serializers.Serializer):
    """The batch page's progress document: counts, outcomes and every item."""

    batch = serializers.IntegerField()
    state = serializers.ChoiceField(choices=Batch.State.values)
    state_label = serializers.CharField()
    total = serializers.IntegerField()
    finished = serializers.IntegerField()
    percent = serializers.IntegerField()
    ok = serializers.IntegerField()
    failed = serializers.IntegerField()
    counts = serializers.DictField(child=serializers.IntegerField())
    by_outcome = serializers.DictField(child=serializers.IntegerField())
    items = BatchItemSerializer(many=True)
