"""Business logic for the connector inventory. Views and commands are glue around these."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, cast

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import transaction

from audit.services import audit_record
from connectors.domain import ALL_SECRET_FIELDS, ParamRow, field_default, url_origin
from connectors.models import (
    CONNECTION_FIELDS,
    AuthConfig,
    ClientAuthentication,
    Connector,
    GrantType,
    JwksKey,
    TokenRequestParam,
)
from connectors.oauth_http import assertions

UserLike = AbstractBaseUser | AnonymousUser | None

# Fields that a change record lists; bookkeeping fields are left out. Of the connection made by
# "Connect", only its refresh token is listed (as set / cleared, like every secret).
TRACKED_FIELDS: tuple[str, ...] = tuple(
    f.name
    for f in Connector._meta.get_fields()
    if getattr(f, "concrete", False)
    and f.name not in {"id", "version", "created_at", "updated_at", "created_by", "updated_by"}
    and (f.name not in CONNECTION_FIELDS or f.name in ALL_SECRET_FIELDS)
)
# The columns an edit writes: never the connection, which a refresh may rotate meanwhile.
EDITED_COLUMNS: tuple[str, ...] = tuple(
    f.name
    for f in Connector._meta.concrete_fields
    if not f.primary_key and f.name not in CONNECTION_FIELDS
)


class ConcurrentEditError(Exception):
    """The connector changed after the editor loaded it."""

    def __init__(self, connector: Connector) -> None:
        self.connector = connector
        who = connector.updated_by.get_username() if connector.updated_by else "someone"
        self.updated_by = who
        self.updated_at = connector.updated_at
        super().__init__(f"{connector.name} was changed by {who} at {connector.updated_at}")


@dataclass(frozen=True)
class FieldChange:
    field: str
    label: str
    before: Any
    after: Any


def _field_label(name: str) -> str:
    return str(Connector._field(name).verbose_name)


def acting_user(user: UserLike) -> AbstractBaseUser | None:
    """The user to record, or None for the command line and anonymous requests."""
    if user is not None and getattr(user, "is_authenticated", False):
        return cast(AbstractBaseUser, user)
    return None


def _params_snapshot(rows: Iterable[TokenRequestParam | ParamRow]) -> list[dict[str, Any]]:
    return [
        {"kind": r.kind, "key": r.key, "value": r.value, "sensitive": r.sensitive} for r in rows
    ]


def _secret_change(before: str, after: str) -> str | None:
    if before == after:
        return None
    if not after:
        return "cleared"
    return "set" if not before else "changed"


def connector_diff(
    *,
    before: dict[str, Any],
    after: dict[str, Any],
    params_before: list[dict[str, Any]],
    params_after: list[dict[str, Any]],
) -> list[FieldChange]:
    """Changed fields: before/after for plain fields, set/changed/cleared for secrets."""
    changes: list[FieldChange] = []
    for name in TRACKED_FIELDS:
        old, new = before.get(name, ""), after.get(name, "")
        if name in ALL_SECRET_FIELDS:
            state = _secret_change(old or "", new or "")
            if state:
                changes.append(FieldChange(name, _field_label(name), None, state))
        elif old != new:
            changes.append(FieldChange(name, _field_label(name), old, new))
    for kind, label in TokenRequestParam.Kind.choices:
        old_rows = [p for p in params_before if p["kind"] == kind]
        new_rows = [p for p in params_after if p["kind"] == kind]
        if old_rows != new_rows:
            changes.append(
                FieldChange(
                    f"params_{kind}",
                    str(label),
                    _describe_rows(old_rows),
                    _describe_rows(new_rows, compare_to=old_rows),
                )
            )
    return changes


def _describe_rows(
    rows: list[dict[str, Any]], compare_to: list[dict[str, Any]] | None = None
) -> list[str]:
    """Rows as `key: value`, with sensitive values reduced to set/changed."""
    previous = {r["key"]: r for r in compare_to or []}
    described = []
    for row in rows:
        if row["sensitive"]:
            old = previous.get(row["key"])
            state = "changed" if old is not None and old["value"] != row["value"] else "set"
            described.append(f"{row['key']}: [sensitive, {state}]")
        else:
            described.append(f"{row['key']}: {row['value']}")
    return described


def _snapshot(connector: Connector) -> dict[str, Any]:
    return {name: getattr(connector, name) for name in TRACKED_FIELDS}


def _changes_payload(changes: list[FieldChange]) -> dict[str, Any]:
    return {
        "changes": [
            {"field": c.field, "label": c.label, "before": c.before, "after": c.after}
            for c in changes
        ]
    }


def _write_params(connector: Connector, rows: list[ParamRow]) -> None:
    connector.params.all().delete()
    position: dict[str, int] = dict.fromkeys(TokenRequestParam.Kind.values, 0)
    objs = []
    for row in rows:
        objs.append(
            TokenRequestParam(
                connector=connector,
                kind=row.kind,
                position=position[row.kind],
                key=row.key,
                value=row.value,
                sensitive=row.sensitive,
            )
        )
        position[row.kind] += 1
    TokenRequestParam.objects.bulk_create(objs)


def connector_create(
    *,
    connector: Connector,
    rows: list[ParamRow],
    user: UserLike,
    action: str = "create",
    source_name: str = "",
    group: dict[str, Any] | None = None,
) -> Connector:
    """Store a new connector (already validated) with its rows, and record the change."""
    actor = acting_user(user)
    with transaction.atomic():
        # The user model is swappable; the stubs know only the default one.
        connector.created_by = connector.updated_by = cast(Any, actor)
        connector.version = 1
        connector.save()
        _write_params(connector, rows)
        blank = {name: field_default(name) for name in TRACKED_FIELDS}
        changes = connector_diff(
            before=blank,
            after=_snapshot(connector),
            params_before=[],
            params_after=_params_snapshot(rows),
        )
        details = _changes_payload(changes)
        if source_name:
            details["cloned_from"] = source_name
        details.update(group or {})
        audit_record(
            kind="change",
            action=action,
            user=actor,
            connector=connector,
            summary={"create": "Created", "clone": "Cloned", "import": "Imported"}.get(
                action, action.capitalize()
            )
            + f" {connector.name}"
            + (f" from {source_name}" if source_name else ""),
            details=details,
        )
    return connector


def connector_update(
    *,
    connector: Connector,
    rows: list[ParamRow],
    user: UserLike,
    expected_version: int | None,
    action: str = "edit",
    group: dict[str, Any] | None = None,
) -> list[FieldChange]:
    """Save a validated edit unless someone else saved first; record what changed."""
    actor = acting_user(user)
    with transaction.atomic():
        current = (
            Connector.objects.select_for_update(of=("self",))
            .select_related("updated_by")
            .get(pk=connector.pk)
        )
        if expected_version is not None and current.version != expected_version:
            raise ConcurrentEditError(current)
        _carry_connection(current, connector)
        params_before = _params_snapshot(current.params.all())
        changes = connector_diff(
            before=_snapshot(current),
            after=_snapshot(connector),
            params_before=params_before,
            params_after=_params_snapshot(rows),
        )
        if not changes:
            return []
        connector.version = current.version + 1
        connector.updated_by = cast(Any, actor)
        connector.created_by_id = current.created_by_id
        connector.save(update_fields=EDITED_COLUMNS)
        if connector.oauth2_authorization_code_refresh_token != (
            current.oauth2_authorization_code_refresh_token
        ):
            # The connection no longer applies (see _carry_connection): drop it with the edit.
            Connector.objects.filter(pk=connector.pk).update(
                **{name: field_default(name) for name in CONNECTION_FIELDS}
            )
        _write_params(connector, rows)
        audit_record(
            kind="change",
            action=action,
            user=actor,
            connector=connector,
            summary=_change_summary(connector, action, changes),
            # group: e.g. {"import": id}, shared by the records of one import (one entry in the log)
            details={**_changes_payload(changes), **(group or {})},
        )
    return changes


def _connection_survives(before: Connector, after: Connector) -> bool:
    """Whether a refresh token obtained with `before`'s settings still belongs to `after`.

    It was issued to one client by one server, and its access tokens go to one API: a change of
    any of these (or leaving the Authorization Code Grant) means connecting again.
    """
    return (
        after.auth_config == AuthConfig.OAUTH2
        and after.oauth2_grant_type == GrantType.AUTHORIZATION_CODE
        and after.oauth2_client_id == before.oauth2_client_id
        and all(
            url_origin(getattr(after, name)) == url_origin(getattr(before, name))
            for name in ("oauth2_token_url", "oauth2_authorization_url", "base_url")
        )
    )


def _carry_connection(current: Connector, connector: Connector) -> None:
    """Give the edited connector the stored connection (locked), or none if it no longer applies.

    The edit was loaded before the lock; a refresh may have rotated the token since.
    """
    keep = _connection_survives(current, connector)
    for name in CONNECTION_FIELDS:
        attname = Connector._field(name).attname
        setattr(connector, attname, getattr(current, attname) if keep else field_default(name))


def _change_summary(connector: Connector, action: str, changes: list[FieldChange]) -> str:
    secret_states = {c.after for c in changes if c.field in ALL_SECRET_FIELDS}
    labels = ", ".join(c.label for c in changes[:6]) + ("…" if len(changes) > 6 else "")
    verb = {
        "edit": "Edited",
        "import": "Imported",
        "pin": "Pinned client authentication on",
        "fix": "Applied a connection test's fix to",
        "generate_key": "Generated a key pair for",
    }.get(action, action.capitalize())
    note = ""
    if "cleared" in secret_states:
        note = " (secret cleared)"
    elif secret_states & {"set", "changed"}:
        note = " (secret replaced)"
    return f"{verb} {connector.name}: {labels}{note}"


def connector_clone_initial(*, source: Connector) -> tuple[dict[str, Any], list[ParamRow]]:
    """Form initial values for a copy of `source`: everything but the secrets."""
    initial = {
        name: getattr(source, name) for name in TRACKED_FIELDS if name not in ALL_SECRET_FIELDS
    }
    initial["name"] = ""
    initial["display_name"] = f"Copy of {source.display_name or source.name}"
    rows = [
        ParamRow(
            kind=p.kind, key=p.key, value="" if p.sensitive else p.value, sensitive=p.sensitive
        )
        for p in source.params.all()
    ]
    return initial, rows


class KeyGenerationRefused(Exception):
    """The connector does not sign JWTs with its current settings; nothing was generated."""


def connector_signs_jwts(connector: Connector) -> bool:
    """Whether the connector's saved settings sign JWTs with its Private Key."""
    if connector.auth_config == AuthConfig.JWT_AUTH:
        return True
    return connector.auth_config == AuthConfig.OAUTH2 and (
        connector.oauth2_grant_type == GrantType.JWT_BEARER
        or connector.oauth2_client_authentication == ClientAuthentication.PRIVATE_KEY_JWT
    )


def connector_generate_signing_key(
    *, connector: Connector, user: UserLike, expected_version: int | None
) -> list[FieldChange]:
    """Make a new private key on the server for the connector's algorithm and store it.

    RSA 2048 for RS256/PS256, EC P-256 for ES256. The key is stored encrypted and never leaves
    the server: pages show only its public half. Recorded as an edit ("Private Key: changed").
    """
    if not connector_signs_jwts(connector):
        raise KeyGenerationRefused(
            "This connector does not sign JWTs: choose Jwt Auth, the JWT Bearer Grant or "
            "private_key_jwt client authentication, save, then generate a key pair."
        )
    # The encrypted field's stubs type the attribute as the field; the value is text.
    pem = assertions.generate_private_key_pem(connector.jwt_algorithm)
    connector.jwt_private_key = pem  # type: ignore[assignment]
    return connector_update(
        connector=connector,
        rows=[ParamRow(p.kind, p.key, p.value, p.sensitive) for p in connector.params.all()],
        user=user,
        expected_version=expected_version,
        action="generate_key",
    )


def connector_delete(*, connector: Connector, user: UserLike) -> None:
    """Delete a connector and record it; its test history stays in the audit log."""
    actor = acting_user(user)
    with transaction.atomic():
        # The connector's row lock first, the audit chain's last: the order every writer uses.
        connector = Connector.objects.select_for_update(of=("self",)).get(pk=connector.pk)
        snapshot = _snapshot(connector)
        changes = connector_diff(
            before=snapshot,
            after={name: field_default(name) for name in TRACKED_FIELDS},
            params_before=_params_snapshot(connector.params.all()),
            params_after=[],
        )
        audit_record(
            kind="change",
            action="delete",
            user=actor,
            connector=connector,
            summary=f"Deleted {connector.name}",
            details=_changes_payload(changes),
        )
        connector.delete()


def connector_rotate_key(*, user: UserLike = None) -> int:
    """Re-encrypt every stored secret under the first FIELD_ENCRYPTION_KEY. Returns rows touched."""
    touched = 0
    with transaction.atomic():
        for connector in Connector.objects.select_for_update().order_by("pk"):
            # Saving writes each encrypted field anew, and the first key always encrypts.
            Connector.objects.filter(pk=connector.pk).update(
                **{name: getattr(connector, name) for name in ALL_SECRET_FIELDS}
            )
            touched += 1
        for param in TokenRequestParam.objects.select_for_update().order_by("pk"):
            TokenRequestParam.objects.filter(pk=param.pk).update(value=param.value)
            touched += 1
        # Jwks Auth's private keys (those not wiped yet) are secrets of the console too.
        for key in JwksKey.objects.select_for_update().filter(wiped_at__isnull=True).order_by("pk"):
            JwksKey.objects.filter(pk=key.pk).update(private_key_pem=key.private_key_pem)
            touched += 1
        audit_record(
            kind="change",
            action="key_rotation",
            user=acting_user(user),
            summary=f"Re-encrypted the secrets of {touched} rows under the newest key",
            details={"rows": touched},
        )
    return touched


__all__ = [
    "ConcurrentEditError",
    "FieldChange",
    "KeyGenerationRefused",
    "acting_user",
    "connector_clone_initial",
    "connector_create",
    "connector_delete",
    "connector_diff",
    "connector_generate_signing_key",
    "connector_rotate_key",
    "connector_signs_jwts",
    "connector_update",
]
