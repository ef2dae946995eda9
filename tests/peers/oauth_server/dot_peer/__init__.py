"""Minimal Django project running django-oauth-toolkit as a loopback OAuth2 test peer.

Deliberately named ``dot_peer`` (not ``config``) so it can never be confused with the
Connector Console project package. Started by ``tests/peers/oauth_server/run.py``.
"""
