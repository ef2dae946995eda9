"""Whether a connector may be tested at all: the rule every way of testing applies first.

The connection test sends the stored secrets; a disabled connector is kept in the inventory
precisely so that nothing uses them. The saved-connector test, the form test and the CLI all
go through `connection_test.connector_test`, which calls `connector_test_check_allowed` before
anything is counted or sent.
"""

from __future__ import annotations

from connectors.models import Connector


class TestRefused(Exception):
    """The connection test may not run; the message says why and what to do."""

    __test__ = False

    def __init__(self, message: str, *, action: str) -> None:
        super().__init__(message)
        self.action = action  # the audit record's action and outcome


DISABLED_MESSAGE = (
    "%(name)s is disabled, so it is not tested: a test would send its stored secrets to its "
    "servers. To test it, tick Enabled and save (or tick Enabled in the form before testing "
    "its values)."
)


def connector_test_check_allowed(*, connector: Connector) -> None:
    """Raise TestRefused when `connector` (saved, or the form's values) may not be tested.

    Refused: a saved connector that is disabled, unless the values tested (a form test) tick
    Enabled, which someone who may save them can do anyway. Values of a new connector hold no
    stored secret, and a form that unticks Enabled on an enabled connector sends nothing a test
    of the saved one would not.
    """
    if connector.enabled or connector.pk is None:
        return
    if Connector.objects.filter(pk=connector.pk, enabled=False).exists():
        raise TestRefused(
            DISABLED_MESSAGE % {"name": connector.name or "This connector"},
            action="connector_disabled",
        )
