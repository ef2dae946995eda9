"""System identities as the audit log shows them: a username that no person signs in with.

The connectors app creates these users (connectors.identities); the audit app only names them,
so the label lives here, where both can read it.
"""

from __future__ import annotations

SYSTEM_ACTORS: dict[str, str] = {"scheduler": "Scheduler (system)"}


def actor_label(username: str) -> str:
    """ "Scheduler (system)" for the scheduler; any other username as it is."""
    return SYSTEM_ACTORS.get(username, username)
