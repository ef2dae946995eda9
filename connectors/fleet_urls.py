"""URLs of the fleet settings (admins): /fleet/schedule/, /fleet/notifications/ and
/fleet/jwks/ (the signing keys of Jwks Auth).

Outside /connectors/, where any segment could be a connector's name.
"""

from __future__ import annotations

from django.urls import path

from connectors.views.fleet_settings import (
    NotificationRuleDeleteView,
    NotificationRuleEditView,
    NotificationRuleListView,
    ScheduleSettingsView,
)
from connectors.views.jwks import JwksKeysView

app_name = "fleet"

urlpatterns = [
    path("schedule/", ScheduleSettingsView.as_view(), name="schedule"),
    path("jwks/", JwksKeysView.as_view(), name="jwks"),
    path("notifications/", NotificationRuleListView.as_view(), name="notifications"),
    path("notifications/new/", NotificationRuleEditView.as_view(), name="notification-new"),
    path("notifications/<int:pk>/", NotificationRuleEditView.as_view(), name="notification-edit"),
    path(
        "notifications/<int:pk>/delete/",
        NotificationRuleDeleteView.as_view(),
        name="notification-delete",
    ),
]
