"""App config: connects the sign-in audit receivers once the app registry is ready."""

from __future__ import annotations

from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Sign-in and sessions"

    def ready(self) -> None:
        """Connect the receivers; axes' own receivers are connected first (INSTALLED_APPS order)."""
        from django.contrib.auth.signals import user_logged_in

        from accounts import signin
        from accounts.middleware import stamp_on_login

        signin.connect()
        user_logged_in.connect(stamp_on_login, dispatch_uid="accounts.idle.stamp_on_login")
