"""URLs of the connector inventory, by role: list, new/, <name>/, <name>/edit/ ..."""

from __future__ import annotations

from django.urls import path

from connectors import views

app_name = "connectors"

urlpatterns = [
    path("", views.ConnectorListView.as_view(), name="list"),
    path("new/", views.ConnectorCreateView.as_view(), name="new"),
    path("import/", views.ConnectorImportView.as_view(), name="import"),
    path("export/", views.ConnectorExportView.as_view(), name="export"),
    path("<str:name>/", views.ConnectorDetailView.as_view(), name="detail"),
    path("<str:name>/edit/", views.ConnectorEditView.as_view(), name="edit"),
    path("<str:name>/clone/", views.ConnectorCloneView.as_view(), name="clone"),
    path("<str:name>/delete/", views.ConnectorDeleteView.as_view(), name="delete"),
]
