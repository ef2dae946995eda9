"""Views of the connector inventory, by role: thin glue between requests, forms, services and
selectors.

inventory: the list and detail pages; dashboard: the fleet's health; edit: create, clone, edit,
delete; transfer: import and export; testing: the connection test and pinning its result;
batches: testing many connectors at once.
"""

from connectors.forms import ExportForm, ImportForm
from connectors.views.base import AUDIT_FAILED_MESSAGE, ConnectorPermissionMixin
from connectors.views.batches import (
    BatchCancelView,
    BatchDetailView,
    BatchProgressView,
    BatchStartView,
)
from connectors.views.dashboard import DashboardView
from connectors.views.edit import (
    ConnectorCloneView,
    ConnectorCreateView,
    ConnectorDeleteView,
    ConnectorEditView,
    ConnectorFormView,
    ConnectorGenerateKeyView,
)
from connectors.views.inventory import ConnectorDetailView, ConnectorListView
from connectors.views.testing import (
    ConnectorFormTestView,
    ConnectorPinView,
    ConnectorTestMixin,
    ConnectorTestView,
)
from connectors.views.transfer import ConnectorExportView, ConnectorImportView

__all__ = [
    "AUDIT_FAILED_MESSAGE",
    "BatchCancelView",
    "BatchDetailView",
    "BatchProgressView",
    "BatchStartView",
    "ConnectorCloneView",
    "ConnectorGenerateKeyView",
    "ConnectorCreateView",
    "ConnectorDeleteView",
    "ConnectorDetailView",
    "ConnectorEditView",
    "ConnectorExportView",
    "ConnectorFormTestView",
    "ConnectorFormView",
    "ConnectorImportView",
    "ConnectorListView",
    "ConnectorPermissionMixin",
    "ConnectorPinView",
    "ConnectorTestMixin",
    "ConnectorTestView",
    "DashboardView",
    "ExportForm",
    "ImportForm",
]
