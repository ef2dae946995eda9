"""URLs of the connector inventory, by role: list, new/, <name>/, <name>/edit/ ..."""

from __future__ import annotations

from django.urls import path

from connectors import views

app_name = "connectors"

urlpatterns = [
    path("", views.ConnectorListView.as_view(), name="list"),
    path("new/", views.ConnectorCreateView.as_view(), name="new"),
    path("new/test/", views.ConnectorFormTestView.as_view(), name="new-test"),
    path("import/", views.ConnectorImportView.as_view(), name="import"),
    path("export/", views.ConnectorExportView.as_view(), name="export"),
    # Before "<name>/": a batch's pages are not a connector's.
    path("batch/start/", views.BatchStartView.as_view(), name="batch-start"),
    path("batch/<int:pk>/", views.BatchDetailView.as_view(), name="batch"),
    path("batch/<int:pk>/progress/", views.BatchProgressView.as_view(), name="batch-progress"),
    path("batch/<int:pk>/cancel/", views.BatchCancelView.as_view(), name="batch-cancel"),
    path("<str:name>/", views.ConnectorDetailView.as_view(), name="detail"),
    path("<str:name>/edit/", views.ConnectorEditView.as_view(), name="edit"),
    path("<str:name>/edit/test/", views.ConnectorFormTestView.as_view(), name="edit-test"),
    path("<str:name>/test/", views.ConnectorTestView.as_view(), name="test"),
    path("<str:name>/pin/", views.ConnectorPinView.as_view(), name="pin"),
    path("<str:name>/key-pair/", views.ConnectorGenerateKeyView.as_view(), name="key-pair"),
    path("<str:name>/clone/", views.ConnectorCloneView.as_view(), name="clone"),
    path("<str:name>/delete/", views.ConnectorDeleteView.as_view(), name="delete"),
]
