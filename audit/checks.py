"""System checks: warn while the audit chain has no key (it then shows accidents, not intent)."""

from __future__ import annotations

from typing import Any

from django.core import checks

from audit.keys import KEY_HELP, current_chain_keys


@checks.register(checks.Tags.security, deploy=False)
def chain_key_check(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    if current_chain_keys().signing_key is not None:
        return []
    return [
        checks.Warning(
            "AUDIT_CHAIN_KEY is not set: new audit records are chained with plain SHA-256, which "
            "anyone with database access can recompute after an edit, and audit_checkpoint "
            "cannot sign.",
            hint=KEY_HELP,
            id="audit.W001",
        )
    ]
