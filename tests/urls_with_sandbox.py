"""The console's URLs plus the demo sandbox, for tests of the demo (CONNECTORS_DEMO is off in
tests, so config.urls leaves the sandbox out)."""

from django.urls import include, path

from config.urls import handler403 as handler403
from config.urls import urlpatterns as console_urlpatterns

urlpatterns = [*console_urlpatterns, path("sandbox/", include("connectors.sandbox"))]
