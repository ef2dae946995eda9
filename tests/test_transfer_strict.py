"""Import refuses bad input with a clear error, never a 500 or a traceback (issue 8).

Found: `auth_config` given as a list or an object, a lone surrogate, and 100k-deep nesting
crashed the import page (500) and the command (traceback); `"enabled": "false"` was read as
True and a list where text belongs as the text "['x']". Every case below is checked on the page
(400 with the error shown), through the command (CommandError), and nothing is imported.
"""

from __future__ import annotations

import io
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils.html import escape

from connectors.models import Connector
from connectors.transfer import connectors_import_text

pytestmark = pytest.mark.django_db


def entry(**values) -> dict:
    return {"name": "strict_one", "base_url": "https://api.example.com", **values}


def file_of(*entries: dict) -> str:
    return json.dumps({"connectors": list(entries)})


# (file text, the error line expected: "connector: field: message", or a part of it)
BAD_FILES = [
    (file_of(entry(auth_config=["oauth2"])), "strict_one: auth_config: Must be text, not a list."),
    (
        file_of(entry(auth_config={"oauth2": True})),
        "strict_one: auth_config: Must be text, not an object.",
    ),
    (
        # json.dumps would escape it the same way: a lone surrogate spelt as JSON allows.
        '{"connectors": [{"name": "strict_one", "base_url": "https://api.example.com", '
        '"auth_config": "bearer", "bearer": {"token": "\\ud800"}}]}',
        "strict_one: bearer.token: Is not valid text: it holds a lone UTF-16 surrogate",
    ),
    (
        '{"connectors": [{"name": "strict_\\udfff", "auth_config": "none"}]}',
        "strict_\\udfff: name: Is not valid text",
    ),
    (
        '{"connectors": [{"name": "strict_one", "description": "\\ud83d", "auth_config": "none"}]}',
        "strict_one: description: Is not valid text",
    ),
    ('{"connectors": ' + "[" * 100_000 + "]" * 100_000 + "}", "nests lists or objects too deeply"),
    ("[" * 100_000, "too deeply"),
    (file_of(entry(enabled="false")), "strict_one: enabled: Must be true or false, not text."),
    (file_of(entry(enabled=0)), "strict_one: enabled: Must be true or false, not a number."),
    (file_of(entry(display_name=["HR"])), "strict_one: display_name: Must be text, not a list."),
    (file_of(entry(display_name=42)), "strict_one: display_name: Must be text, not a number."),
    (file_of(entry(base_url=True)), "strict_one: base_url: Must be text, not true/false."),
    (
        file_of(entry(auth_config="basic", basic={"username": "u", "password": 1234})),
        "strict_one: basic.password: Must be text, not a number.",
    ),
    (
        file_of(entry(auth_config="basic", basic=["u", "p"])),
        "strict_one: basic: Must be an object, not a list.",
    ),
    (
        file_of(
            entry(
                auth_config="oauth2",
                oauth2={
                    "grant_type": "client_credentials",
                    "client_id": "c",
                    "client_secret": "s",
                    "token_url": "https://login.example.com/token",
                    "scope": ["read"],
                },
            )
        ),
        "strict_one: oauth2.scope: Must be text, not a list.",
    ),
    (
        file_of(
            entry(
                auth_config="oauth2",
                oauth2={
                    "grant_type": "client_credentials",
                    "client_id": "c",
                    "client_secret": "s",
                    "token_url": "https://login.example.com/token",
                    "additional_headers": [
                        {"key": "X-A", "value": 5},
                        {"key": "X-B", "value": "v", "sensitive": "yes"},
                        "X-C: v",
                    ],
                },
            )
        ),
        "strict_one: additional_headers[0].value: Must be text, not a number.",
    ),
    (file_of({"name": ["x"], "auth_config": "none"}), "#1: name: Must be text, not a list."),
]


@pytest.mark.parametrize(("text", "expected"), BAD_FILES)
def test_the_page_answers_400_and_says_what_is_wrong(admin_client, text, expected):
    upload = SimpleUploadedFile("c.json", text.encode("utf-8", "surrogatepass"), "application/json")
    response = admin_client.post("/connectors/import/", {"file": upload})
    assert response.status_code == 400
    page = response.content.decode()
    assert escape(expected.split(": ")[-1]) in page
    assert not Connector.objects.exists()


@pytest.mark.parametrize(("text", "expected"), BAD_FILES)
def test_the_command_exits_with_the_error(tmp_path, text, expected):
    path = tmp_path / "c.json"
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    err = io.StringIO()
    with pytest.raises(CommandError) as raised:
        call_command("connectors_import", str(path), stdout=io.StringIO(), stderr=err)
    assert expected in err.getvalue() + str(raised.value)
    assert not Connector.objects.exists()


def test_every_type_error_of_a_row_is_listed():
    text = BAD_FILES[-2][0]
    result = connectors_import_text(text=text, user=None)
    assert [str(e) for e in result.errors] == [
        "strict_one: additional_headers[0].value: Must be text, not a number.",
        "strict_one: additional_headers[1].sensitive: Must be true or false, not text.",
        "strict_one: additional_headers[2]: Must be an object with key, value and sensitive, "
        "not text.",
    ]


def test_enabled_false_stays_false_and_null_text_is_empty():
    text = file_of(entry(auth_config="none", enabled=False, description=None))
    assert connectors_import_text(text=text, user=None).ok
    connector = Connector.objects.get(name="strict_one")
    assert connector.enabled is False
    assert connector.description == ""


def test_an_update_that_omits_enabled_keeps_the_connector_disabled(make_connector):
    make_connector("strict_one", auth_config="none", enabled=False)
    text = file_of({"name": "strict_one", "display_name": "Strict"})
    result = connectors_import_text(text=text, user=None)
    assert result.ok, result.errors
    connector = Connector.objects.get(name="strict_one")
    assert connector.display_name == "Strict"
    assert connector.enabled is False


def test_a_name_with_control_characters_is_shown_escaped(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(file_of({"name": "evil\x1b[2J\x00", "auth_config": "none"}))
    err = io.StringIO()
    with pytest.raises(CommandError):
        call_command("connectors_import", str(path), stdout=io.StringIO(), stderr=err)
    lines = err.getvalue()
    assert "\x1b" not in lines and "\x00" not in lines
    assert "evil\\x1b[2J\\x00: Name:" in lines


def test_a_value_quoted_in_a_message_reaches_the_terminal_escaped(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(file_of(entry(auth_config="none\x1b]0;owned\x07")))
    err = io.StringIO()
    with pytest.raises(CommandError):
        call_command("connectors_import", str(path), stdout=io.StringIO(), stderr=err)
    assert "strict_one: Auth Config: " in err.getvalue()
    assert "\x1b" not in err.getvalue() and "\x07" not in err.getvalue()


def test_a_name_with_nul_is_never_sent_to_the_database():
    """PostgreSQL refuses NUL in a query parameter: such a name must not be looked up."""
    from django.db import connection

    sent: list = []

    def spy(execute, sql, params, many, context):
        sent.append(repr(params))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(spy):
        result = connectors_import_text(
            text=file_of({"name": "nul\x00name", "auth_config": "none"}), user=None
        )
    assert str(result.errors[0]).startswith("nul\\x00name: Name:")
    assert not any("\\x00" in params for params in sent)
