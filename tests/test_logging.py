"""Log output masks token-like values, in messages and in tracebacks."""

from __future__ import annotations

import logging

from connectors.logging import RedactingFormatter, RedactSecretsFilter


def test_messages_and_tracebacks_are_masked():
    record_logger = logging.getLogger("tests.redaction")
    formatter = RedactingFormatter("%(message)s")
    try:
        raise ValueError('server said {"access_token": "tok-in-traceback-123"}')
    except ValueError:
        record = record_logger.makeRecord(
            "tests", logging.ERROR, __file__, 1, "got %s", ("Bearer abc.def-ghi-456",), None
        )
        import sys

        record.exc_info = sys.exc_info()
    assert RedactSecretsFilter().filter(record)
    text = formatter.format(record)
    assert "abc.def-ghi-456" not in text
    assert "tok-in-traceback-123" not in text
    assert "ValueError" in text and "********" in text


def test_a_url_quoted_in_an_error_loses_its_secret_query_values():
    from connectors.oauth_http.redaction import redact_text

    text = (
        "HTTPConnectionPool(host='api.example.com', port=443): Max retries exceeded with url: "
        "/v1/me?key_for_api=APIKEY-12345&page=2&token_type=bearer"
    )
    redacted = redact_text(text, secrets=())
    assert "APIKEY-12345" not in redacted
    assert "page=2" in redacted and "token_type=bearer" in redacted


def test_django_log_lines_are_printed_once_and_error_mails_still_go():
    """Django's default "django" console handler printed each of its lines a second time next to
    the root's (the autoreloader's "Watching for file changes" twice at `make run`)."""
    import logging as _logging

    from django.utils.log import AdminEmailHandler

    django_logger = _logging.getLogger("django")
    streams = [h for h in django_logger.handlers if isinstance(h, _logging.StreamHandler)]
    assert streams == [] and django_logger.propagate
    assert any(isinstance(h, AdminEmailHandler) for h in django_logger.handlers)
