from __future__ import annotations

from django.urls import path

from audit import views

app_name = "audit"
urlpatterns = [
    path("", views.audit_list, name="list"),
    path("export/", views.audit_export, name="export"),
    path("suggest/<slug:field>/", views.audit_suggest, name="suggest"),
    path("<int:pk>/", views.audit_detail, name="detail"),
]
