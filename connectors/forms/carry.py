"""Secrets typed into a form that failed, carried to the next submit without the page holding them.

A secret input never renders a value (a page that echoed it would put it in the browser's
history, caches and screenshots). Without this module a failed submit therefore lost every
secret typed, and with one typo in another field the user typed them all again.

What is carried:
- lives in the user's session, under the form's scope (``new``, ``clone:<id>`` or
  ``edit:<id>``) and a random token that the form carries in a hidden input;
- is encrypted with the project's FIELD_ENCRYPTION_KEY (the Fernet keys the model fields use)
  and states its own scope, token and user inside the ciphertext, so a blob copied to another
  session, form or user decrypts to nothing usable;
- expires CARRY_SECONDS after the submit that typed it (Fernet's own timestamp decides);
- is never rendered: the page only says which fields hold a carried value.

The field names (never the values) are kept in clear beside the ciphertext, so a page can say
which secret has to be typed again when the carried value expired or could not be read.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import cryptography.fernet
from encrypted_model_fields import fields as encrypted

from connectors import rules
from connectors.domain import GRANT_FIELDS, SECRET_FIELDS, TYPED_SECRET_FIELDS, norm_row_key
from connectors.models import AuthConfig, TokenRequestParam

CARRY_SECONDS = 600
SESSION_KEY = "cc_secret_carry"
TOKEN_FIELD = "carry_token"
# At most this many forms' carried secrets per session (several tabs); the oldest go first.
MAX_ENTRIES = 8
# Why a carried secret has to be typed again, shown at the field.
RETYPE_EXPIRED = "expired"
RETYPE_UNREADABLE = "unreadable"
RETYPE_AUTH_CHANGED = "auth_changed"
RETYPE_MESSAGES: dict[str, str] = {
    RETYPE_EXPIRED: "Type it again: the value kept from your last submit expired after "
    f"{CARRY_SECONDS // 60} minutes.",
    RETYPE_UNREADABLE: "Type it again: the value kept from your last submit could not be read "
    "back (the server's key or your session changed).",
    RETYPE_AUTH_CHANGED: "Type it again: the value you typed earlier was dropped when the Auth "
    "Config or grant type changed.",
}


# The key/value formsets whose sensitive values are carried too, by prefix.
ROW_KINDS: dict[str, str] = {
    "headers": TokenRequestParam.Kind.HEADER,
    "data": TokenRequestParam.Kind.DATA,
}
# At most this many rows per formset are looked at (the formset's own ceiling).
_MAX_ROWS = rules.ABSOLUTE_MAX_PARAM_ROWS


def forget_field(name: str) -> str:
    """The name of the box that forgets the value carried for secret `name` (or a row)."""
    return f"{name}_forget"


def _row_slot(prefix: str, key: str) -> str:
    """Where a sensitive row's value is carried: by formset and name, as rows move and go."""
    return f"row:{prefix}:{norm_row_key(ROW_KINDS[prefix], key.strip())}"


def _rows_posted(data: Mapping[str, Any]) -> list[tuple[str, int, str]]:
    """(prefix, index, key) of each posted row with a name and not marked for removal."""
    rows = []
    for prefix in ROW_KINDS:
        total = str(data.get(f"{prefix}-TOTAL_FORMS", "") or "")
        count = min(int(total), _MAX_ROWS) if total.isascii() and total.isdigit() else 0
        for index in range(count):
            key = str(data.get(f"{prefix}-{index}-key", "") or "").strip()
            if key and not data.get(f"{prefix}-{index}-DELETE"):
                rows.append((prefix, index, key))
    return rows


def new_token() -> str:
    return secrets.token_urlsafe(18)


def _token_of(data: Mapping[str, Any] | None) -> str:
    token = str((data or {}).get(TOKEN_FIELD, "") or "")
    # A token is ours only if it looks like one: no session key is built from arbitrary input.
    if 16 <= len(token) <= 64 and all(c.isalnum() or c in "-_" for c in token):
        return token
    return ""


def secrets_in_use(auth_config: str, grant_type: str) -> tuple[str, ...]:
    """The secret fields the chosen Auth Config (and OAuth2 grant type) sends."""
    names = SECRET_FIELDS.get(auth_config, ())
    if auth_config != AuthConfig.OAUTH2:
        return names
    other_grants = {
        name for grant, fields in GRANT_FIELDS.items() if grant != grant_type for name in fields
    }
    own = set(GRANT_FIELDS.get(grant_type, ()))
    return tuple(name for name in names if name not in other_grants or name in own)


def _pruned(entries: dict[str, Any]) -> dict[str, Any]:
    """Expired values dropped (their names stay, to say "type it again"), the oldest forms too."""
    now = time.time()
    for entry in entries.values():
        if now - float(entry.get("at", 0)) >= CARRY_SECONDS:
            entry["blob"] = ""
    while len(entries) > MAX_ENTRIES:
        oldest = min(entries, key=lambda key: float(entries[key].get("at", 0)))
        entries.pop(oldest)
    return entries


@dataclass
class SecretCarry:
    """The carried secrets of one form in one session: read on submit, written on failure."""

    session: Any
    scope: str
    user_id: int | None
    token: str
    values: dict[str, str] = field(default_factory=dict, repr=False)
    # name -> RETYPE_* code: secrets typed before that must be typed again.
    retype: dict[str, str] = field(default_factory=dict)
    # The secrets the page shows as "kept from your last submit".
    kept: set[str] = field(default_factory=set)
    # The same for rows: (formset prefix, row index).
    kept_rows: set[tuple[str, int]] = field(default_factory=set)

    @classmethod
    def open(
        cls, *, session: Any, scope: str, user_id: int | None, data: Mapping[str, Any] | None
    ) -> SecretCarry:
        """The carry named by the submitted form's token (a new token on a first load)."""
        token = _token_of(data)
        carry = cls(session=session, scope=scope, user_id=user_id, token=token or new_token())
        if token:
            carry._load()
        return carry

    @classmethod
    def open_for_test(
        cls, *, session: Any, edit_scope: str | None, user_id: int | None, data: Mapping[str, Any]
    ) -> SecretCarry:
        """The carry of a form whose "Test connection" was pressed (it posts the same token).

        New and Clone forms share one test URL, so their scope is found by the token.
        """
        token = _token_of(data)
        scope = edit_scope or "new"
        if edit_scope is None and token:
            entries = session.get(SESSION_KEY)
            for key in entries if isinstance(entries, dict) else {}:
                prefix, _, entry_token = key.rpartition(":")
                if entry_token == token and (prefix == "new" or prefix.startswith("clone:")):
                    scope = prefix
        return cls.open(session=session, scope=scope, user_id=user_id, data=data)

    @property
    def _key(self) -> str:
        return f"{self.scope}:{self.token}"

    def _entries(self) -> dict[str, Any]:
        entries = self.session.get(SESSION_KEY)
        return entries if isinstance(entries, dict) else {}

    def _load(self) -> None:
        entry = self._entries().get(self._key)
        if not isinstance(entry, dict):
            return
        names = [n for n in entry.get("names", []) if n in TYPED_SECRET_FIELDS]
        self.retype.update(
            {n: c for n, c in entry.get("retype", {}).items() if n in TYPED_SECRET_FIELDS}
        )
        try:
            plain = encrypted.CRYPTER.decrypt(entry["blob"].encode(), ttl=CARRY_SECONDS)
            payload = json.loads(plain)
        except cryptography.fernet.InvalidToken:
            # Fernet says the same for expired and for unreadable; the clock tells them apart.
            age = time.time() - float(entry.get("at", 0))
            code = RETYPE_EXPIRED if age >= CARRY_SECONDS else RETYPE_UNREADABLE
            self.retype.update(dict.fromkeys(names, code))
            return
        except (KeyError, TypeError, ValueError, AttributeError):
            self.retype.update(dict.fromkeys(names, RETYPE_UNREADABLE))
            return
        if payload.get("bind") != [self.scope, self.token, self.user_id]:
            self.retype.update(dict.fromkeys(names, RETYPE_UNREADABLE))
            return
        values = payload.get("values", {})
        self.values = {
            n: v
            for n, v in values.items()
            if (n in TYPED_SECRET_FIELDS or n.startswith("row:")) and isinstance(v, str) and v
        }

    def apply(self, data: Any) -> Any:
        """`data` with each carried secret filled into its blank field, unless forgotten.

        Returns a mutable copy; a value typed now always wins over the carried one.
        """
        data = data.copy()
        for name, value in self.values.items():
            if data.get(forget_field(name)):
                continue
            if not data.get(name) and not data.get(f"{name}_clear"):
                data[name] = value
                self.kept.add(name)
        for prefix, index, key in _rows_posted(data):
            field_name = f"{prefix}-{index}-value"
            value = self.values.get(_row_slot(prefix, key), "")
            if value and not data.get(field_name) and not data.get(forget_field(field_name)):
                data[field_name] = value
                data[f"{prefix}-{index}-sensitive"] = "on"  # it was sensitive when typed
                self.kept_rows.add((prefix, index))
        return data

    def remember(
        self,
        data: Mapping[str, Any],
        valid: Iterable[str],
        valid_rows: Iterable[tuple[str, int]] = (),
    ) -> None:
        """After a failed submit: keep the secrets of the chosen Auth Config that have a value.

        `data` is what the form was bound to (typed values plus applied carried ones);
        `valid` the secret fields without an error of their own (an invalid value is not kept:
        its error already asks for it again); `valid_rows` the same for rows, as
        (prefix, index).
        """
        keep, retype = self._sort(data, set(valid))
        self.kept = set(keep)
        self.retype = retype
        self.kept_rows = set()
        valid_rows = set(valid_rows)
        for prefix, index, key in _rows_posted(data):
            field_name = f"{prefix}-{index}-value"
            value = str(data.get(field_name, "") or "")
            sensitive = rules.row_is_sensitive(
                key, {"sensitive": data.get(f"{prefix}-{index}-sensitive")}
            )
            if value and sensitive and (prefix, index) in valid_rows:
                keep[_row_slot(prefix, key)] = value
                self.kept_rows.add((prefix, index))
        entries = self._entries()
        entries.pop(self._key, None)
        if keep or retype:
            payload = {"bind": [self.scope, self.token, self.user_id], "values": keep}
            blob = encrypted.CRYPTER.encrypt(json.dumps(payload).encode()).decode()
            entries[self._key] = {
                "names": sorted(name for name in keep if name in TYPED_SECRET_FIELDS),
                "retype": retype,
                "at": time.time(),
                "blob": blob,
            }
        self.session[SESSION_KEY] = _pruned(entries)

    def _sort(
        self, data: Mapping[str, Any], valid: set[str]
    ) -> tuple[dict[str, str], dict[str, str]]:
        """(values to keep, name -> why it must be typed again) for a failed submit."""
        in_use = set(
            secrets_in_use(
                str(data.get("auth_config") or ""), str(data.get("oauth2_grant_type") or "")
            )
        )
        keep: dict[str, str] = {}
        retype: dict[str, str] = {}
        for name in TYPED_SECRET_FIELDS:
            value = str(data.get(name) or "")
            if data.get(f"{name}_clear") or data.get(forget_field(name)):
                continue
            if not value:
                if name in self.retype and name in in_use:
                    retype[name] = self.retype[name]
            elif name not in in_use:
                retype[name] = RETYPE_AUTH_CHANGED
            elif name in valid:
                keep[name] = value
        return keep, retype

    def discard(self) -> None:
        """After a save: nothing of this form is carried any more."""
        entries = self._entries()
        if entries.pop(self._key, None) is not None:
            self.session[SESSION_KEY] = entries
        self.values, self.kept, self.retype = {}, set(), {}
