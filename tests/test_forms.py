"""The Auth Config form: which fields each choice requires, stores and ignores; the formsets."""

from __future__ import annotations

import pytest

from connectors.forms import MAX_PARAM_ROWS, connector_forms
from connectors.models import Connector
from connectors.services import ConcurrentEditError, connector_update
from tests.conftest import OAUTH2_PASSWORD, form_data

pytestmark = pytest.mark.django_db

BASE = {"name": "hr_portal", "base_url": "https://api.example.com", "enabled": True}

# (Auth Config values, fields that must be required when blank)
REQUIRED_MATRIX = [
    ({"auth_config": "none"}, set()),
    ({"auth_config": "basic"}, {"basic_username", "basic_password"}),
    ({"auth_config": "api_key", "api_key_location": "header"}, {"api_key"}),
    ({"auth_config": "api_key", "api_key_location": "param"}, {"api_key", "api_key_param_name"}),
    ({"auth_config": "bearer"}, {"bearer_token"}),
    (
        {"auth_config": "oauth2", "oauth2_grant_type": "password"},
        {"oauth2_client_id", "oauth2_username", "oauth2_password", "oauth2_token_url"},
    ),
    (
        {"auth_config": "oauth2", "oauth2_grant_type": "client_credentials"},
        {"oauth2_client_id", "oauth2_client_secret", "oauth2_token_url"},
    ),
    (
        {"auth_config": "oauth2", "oauth2_grant_type": "refresh_token"},
        {"oauth2_refresh_token", "oauth2_token_url"},
    ),
]


def bundle_for(values, rows=None, instance=None):
    return connector_forms(data=form_data({**BASE, **values}, rows), instance=instance)


@pytest.mark.parametrize(("choice", "required"), REQUIRED_MATRIX)
def test_each_choice_requires_exactly_its_fields(choice, required):
    bundle = bundle_for(choice)
    valid = bundle.is_valid()
    errors = {
        name
        for name, errs in bundle.form.errors.items()
        if any(e.code == "required" for e in errs.as_data())
    }
    assert errors == required
    assert valid is (not required)


def test_password_grant_allows_a_public_client_without_secret():
    values = {**OAUTH2_PASSWORD, "oauth2_client_secret": ""}
    bundle = bundle_for(values)
    assert bundle.is_valid(), bundle.form.errors
    assert bundle.form.instance.oauth2_client_secret == ""


def test_required_message_names_the_choice():
    bundle = bundle_for({"auth_config": "oauth2", "oauth2_grant_type": "password"})
    bundle.is_valid()
    assert bundle.form.errors["oauth2_username"] == ["This field is required for Password Grant."]
    assert "Password Grant Password" in bundle.form.errors["oauth2_password"][0]


def test_values_of_unchosen_groups_are_not_stored():
    values = {
        **OAUTH2_PASSWORD,
        "oauth2_client_credentials_scope": "cc-scope",
        "oauth2_refresh_token": "stray-refresh",
        "basic_username": "stray-user",
        "basic_password": "stray-password",
        "bearer_token": "stray-bearer",
        "api_key": "stray-key",
    }
    bundle = bundle_for(values)
    assert bundle.is_valid(), bundle.form.errors
    instance = bundle.form.instance
    assert instance.oauth2_username == "svc.user"
    assert instance.oauth2_client_credentials_scope == ""
    assert instance.oauth2_refresh_token == ""
    assert instance.basic_username == "" and instance.basic_password == ""
    assert instance.bearer_token == "" and instance.api_key == ""


def test_rows_are_dropped_for_other_auth_configs():
    bundle = bundle_for(
        {"auth_config": "bearer", "bearer_token": "tok"},
        rows={"headers": [{"key": "X-Extra", "value": "1"}]},
    )
    assert bundle.is_valid()
    assert bundle.rows() == []


def test_switching_auth_config_clears_the_old_secrets(make_connector):
    connector = make_connector()
    bundle = bundle_for(
        {"auth_config": "bearer", "bearer_token": "new-bearer", "version": 1},
        instance=connector,
    )
    assert bundle.is_valid(), bundle.form.errors
    connector_update(
        connector=bundle.form.instance, rows=bundle.rows(), user=None, expected_version=1
    )
    connector.refresh_from_db()
    assert connector.bearer_token == "new-bearer"
    assert connector.oauth2_password == "" and connector.oauth2_client_secret == ""
    assert connector.oauth2_username == ""


def test_header_pattern_needs_exactly_one_placeholder():
    for pattern, ok in [
        ("Bearer %s", True),
        ("%s", True),
        ("Bearer", False),
        ("%s %s", False),
        ("Bearer %d", False),
    ]:
        bundle = bundle_for({**OAUTH2_PASSWORD, "oauth2_header_auth_value_pattern": pattern})
        assert bundle.is_valid() is ok, (pattern, bundle.form.errors)


def test_blank_optional_oauth2_fields_take_their_defaults():
    bundle = bundle_for(
        {
            **OAUTH2_PASSWORD,
            "oauth2_header_auth_key": "",
            "oauth2_header_auth_value_pattern": "",
            "oauth2_access_token_key": "",
        }
    )
    assert bundle.is_valid(), bundle.form.errors
    instance = bundle.form.instance
    assert instance.oauth2_header_auth_key == "Authorization"
    assert instance.oauth2_header_auth_value_pattern == "Bearer %s"
    assert instance.oauth2_access_token_key == "access_token"


def test_dotted_token_key_is_allowed_but_empty_segments_are_not():
    assert bundle_for({**OAUTH2_PASSWORD, "oauth2_access_token_key": "data.token"}).is_valid()
    assert not bundle_for({**OAUTH2_PASSWORD, "oauth2_access_token_key": "data..token"}).is_valid()


def test_basic_user_client_auth_needs_the_password_grant():
    values = {
        "auth_config": "oauth2",
        "oauth2_grant_type": "client_credentials",
        "oauth2_client_id": "c",
        "oauth2_client_secret": "s",
        "oauth2_token_url": "https://login.example.com/token",
        "oauth2_client_authentication": "basic_user",
    }
    bundle = bundle_for(values)
    assert not bundle.is_valid()
    assert "oauth2_client_authentication" in bundle.form.errors


@pytest.mark.parametrize(
    ("url", "error"),
    [
        ("https://login.example.com/token", None),
        ("ftp://login.example.com/token", "absolute URL"),
        ("/oauth/token", "absolute URL"),
        ("https://user:pw@login.example.com/token", "Remove the user name and password"),
        ("https://login.example.com:99999/token", "valid URL"),
    ],
)
def test_token_url_must_be_absolute_http_without_credentials(url, error):
    bundle = bundle_for({**OAUTH2_PASSWORD, "oauth2_token_url": url})
    valid = bundle.is_valid()
    if error is None:
        assert valid, bundle.form.errors
    else:
        assert error in " ".join(bundle.form.errors["oauth2_token_url"])


def test_plain_http_is_accepted_with_a_warning():
    bundle = bundle_for(
        {
            **OAUTH2_PASSWORD,
            "oauth2_token_url": "http://login.example.com/t",
            "base_url": "http://api.example.com",
        }
    )
    assert bundle.is_valid()
    assert len(bundle.warnings) == 2
    assert "plain http://" in bundle.warnings[0]


@pytest.mark.parametrize(
    "name,ok",
    [
        ("hr_portal", True),
        ("a", False),
        ("1abc", False),
        ("has-dash", False),
        ("x" * 64, True),
        ("x" * 65, False),
        ("new", False),
    ],
)
def test_connector_name_rules(name, ok):
    assert bundle_for({**OAUTH2_PASSWORD, "name": name}).is_valid() is ok


def test_name_cannot_change_after_creation(make_connector):
    connector = make_connector()
    bundle = bundle_for({**OAUTH2_PASSWORD, "name": "renamed", "version": 1}, instance=connector)
    assert bundle.is_valid()
    assert bundle.form.instance.name == "hr_portal"


# Secrets on edit.


def test_blank_secret_keeps_the_stored_one_and_clear_removes_it(make_connector):
    connector = make_connector(**{**OAUTH2_PASSWORD, "oauth2_client_secret": "keep-me"})
    edit = {**OAUTH2_PASSWORD, "oauth2_client_secret": "", "oauth2_password": "", "version": 1}
    bundle = bundle_for(edit, instance=connector)
    assert bundle.is_valid(), bundle.form.errors
    assert bundle.form.instance.oauth2_client_secret == "keep-me"
    assert bundle.form.instance.oauth2_password == "user-password-1"

    connector = Connector.objects.get(pk=connector.pk)
    bundle = bundle_for({**edit, "oauth2_client_secret_clear": True}, instance=connector)
    assert bundle.is_valid(), bundle.form.errors
    assert bundle.form.instance.oauth2_client_secret == ""


def test_clearing_a_required_secret_is_an_error(make_connector):
    connector = make_connector()
    bundle = bundle_for(
        {**OAUTH2_PASSWORD, "oauth2_password": "", "oauth2_password_clear": True, "version": 1},
        instance=connector,
    )
    assert not bundle.is_valid()
    assert "oauth2_password" in bundle.form.errors


def test_secret_inputs_never_render_a_value(make_connector):
    connector = make_connector()
    bundle = connector_forms(instance=connector)
    html = str(bundle.form["oauth2_password"]) + str(bundle.form["oauth2_client_secret"])
    assert "user-password-1" not in html and "client-secret-1" not in html
    assert "Stored" in html
    # Nor after a failed submit that typed a new one.
    failed = bundle_for(
        {**OAUTH2_PASSWORD, "oauth2_password": "typed-new-pw", "oauth2_token_url": "nope"},
        instance=connector,
    )
    assert not failed.is_valid()
    assert "typed-new-pw" not in str(failed.form["oauth2_password"])


def test_concurrent_edit_is_refused(make_connector):
    connector = make_connector()
    first = bundle_for(
        {**OAUTH2_PASSWORD, "display_name": "First", "version": 1},
        instance=Connector.objects.get(pk=connector.pk),
    )
    second = bundle_for(
        {**OAUTH2_PASSWORD, "display_name": "Second", "version": 1},
        instance=Connector.objects.get(pk=connector.pk),
    )
    assert first.is_valid() and second.is_valid()
    connector_update(
        connector=first.form.instance, rows=first.rows(), user=None, expected_version=1
    )
    with pytest.raises(ConcurrentEditError):
        connector_update(
            connector=second.form.instance, rows=second.rows(), user=None, expected_version=1
        )
    assert Connector.objects.get(pk=connector.pk).display_name == "First"


# Formsets.


def rows_bundle(headers=(), data=(), **extra):
    rows = {"headers": list(headers), "data": list(data)}
    return bundle_for({**OAUTH2_PASSWORD, **extra}, rows=rows)


def test_rows_keep_their_order_and_blank_rows_are_skipped():
    bundle = rows_bundle(
        headers=[
            {"key": "B-Header", "value": "2"},
            {"key": "", "value": ""},
            {"key": "A-Header", "value": "1"},
        ],
        data=[{"key": "resource", "value": "r"}, {"key": "audience", "value": "a"}],
    )
    assert bundle.is_valid()
    assert [(r.kind, r.key) for r in bundle.rows()] == [
        ("header", "B-Header"),
        ("header", "A-Header"),
        ("data", "resource"),
        ("data", "audience"),
    ]


def test_deleted_rows_are_dropped():
    bundle = rows_bundle(
        headers=[{"key": "X-One", "value": "1", "DELETE": True}, {"key": "X-Two", "value": "2"}]
    )
    assert bundle.is_valid()
    assert [r.key for r in bundle.rows()] == ["X-Two"]


@pytest.mark.parametrize(
    ("headers", "data", "message"),
    [
        ([{"key": "Bad Header", "value": "x"}], [], "RFC 9110"),
        ([{"key": "X-A", "value": "a\r\nInjected: 1"}], [], "line breaks"),
        ([], [{"key": "resource", "value": "a\x00b"}], "Null characters"),
        ([{"key": "X-A", "value": "1"}, {"key": "x-a", "value": "2"}], [], "already used"),
        ([], [{"key": "aud", "value": "1"}, {"key": "aud", "value": "2"}], "already used"),
        ([{"key": "Content-Type", "value": "text/plain"}], [], "sets Content-Type itself"),
        ([{"key": "host", "value": "evil"}], [], "sets host itself"),
        ([{"key": "Authorization", "value": "x"}], [], "Request Body"),
        ([], [{"key": "client_secret", "value": "x"}], "Client Secret field"),
        ([], [{"key": "grant_type", "value": "x"}], "Custom Grant Type"),
        ([], [{"key": "password", "value": "x"}], "Password Grant Password"),
        ([{"key": "", "value": "orphan"}], [], "Enter a name"),
        ([{"key": "X-Long", "value": "v" * 4097}], [], "at most 4096"),
    ],
)
def test_row_rules(headers, data, message):
    bundle = rows_bundle(headers=headers, data=data)
    assert not bundle.is_valid()
    all_errors = " ".join(
        str(e) for fs in (bundle.headers, bundle.data) for e in fs.errors
    ) + " ".join(str(e) for fs in (bundle.headers, bundle.data) for e in fs.non_form_errors())
    assert message in all_errors


def test_authorization_header_is_allowed_with_request_body_client_auth():
    bundle = rows_bundle(
        headers=[{"key": "Authorization", "value": "Custom x"}],
        oauth2_client_authentication="request_body",
    )
    assert bundle.is_valid(), bundle.headers.errors


def test_row_count_is_capped():
    bundle = rows_bundle(
        headers=[{"key": f"X-{i}", "value": "v"} for i in range(MAX_PARAM_ROWS + 1)]
    )
    assert not bundle.is_valid()
    assert "at most 20" in " ".join(bundle.headers.non_form_errors())


def test_sensitive_row_value_is_kept_when_left_blank_and_never_rendered(make_connector):
    connector = make_connector(
        rows={
            "headers": [
                {"key": "X-Api-Secret", "value": "row-secret-1", "sensitive": True},
                {"key": "X-Plain", "value": "plain-value"},
            ]
        }
    )
    unbound = connector_forms(instance=connector)
    html = "".join(str(form) for form in unbound.headers)
    assert "row-secret-1" not in html and "plain-value" in html

    bundle = bundle_for(
        {**OAUTH2_PASSWORD, "version": 1},
        rows={
            "headers": [
                {"key": "X-Api-Secret", "value": "", "sensitive": True},
                {"key": "X-Plain", "value": "plain-value"},
            ]
        },
        instance=Connector.objects.get(pk=connector.pk),
    )
    assert bundle.is_valid()
    assert bundle.rows()[0].value == "row-secret-1"


def test_unticking_sensitive_without_a_new_value_is_refused(make_connector):
    connector = make_connector(
        rows={"headers": [{"key": "X-Tenant", "value": "tenant-42", "sensitive": True}]}
    )
    bundle = bundle_for(
        {**OAUTH2_PASSWORD, "version": 1},
        rows={"headers": [{"key": "X-Tenant", "value": ""}]},
        instance=connector,
    )
    assert not bundle.is_valid()
    assert "Enter the value again" in str(bundle.headers.errors)


def test_a_name_that_looks_secret_is_stored_sensitive_even_unticked():
    bundle = rows_bundle(
        data=[{"key": "api_pwd", "value": "pwd-value"}, {"key": "token_type", "value": "bearer"}]
    )
    assert bundle.is_valid()
    assert [(r.key, r.sensitive) for r in bundle.rows()] == [
        ("api_pwd", True),
        ("token_type", False),
    ]


@pytest.mark.parametrize("key", ["X-Secret", "X-Renamed-Secret"])
def test_a_sensitive_row_without_a_stored_value_needs_one(make_connector, key):
    connector = make_connector(
        rows={"headers": [{"key": "X-Secret", "value": "stored-1", "sensitive": True}]}
    )
    bundle = bundle_for(
        {**OAUTH2_PASSWORD, "version": 1},
        rows={"headers": [{"key": key, "value": "", "sensitive": True}]},
        instance=connector,
    )
    assert bundle.is_valid() is (key == "X-Secret")
    if key != "X-Secret":
        assert "no stored value" in str(bundle.headers.errors)
    # A clone has nothing stored at all.
    clone = bundle_for(
        {**OAUTH2_PASSWORD, "name": "copy"},
        rows={"headers": [{"key": "X-Secret", "value": "", "sensitive": True}]},
    )
    assert not clone.is_valid()


def test_stored_secrets_are_only_sent_where_they_were_entered_for(make_connector):
    connector = make_connector(rows={"data": [{"key": "tenant_secret", "value": "s-1"}]})
    moved = {
        **OAUTH2_PASSWORD,
        "oauth2_client_secret": "",
        "oauth2_password": "",
        "oauth2_token_url": "https://attacker.example.net/token",
        "version": 1,
    }
    bundle = bundle_for(
        moved, rows={"data": [{"key": "tenant_secret", "value": ""}]}, instance=connector
    )
    assert not bundle.is_valid()
    assert "attacker.example.net" in bundle.form.errors["oauth2_client_secret"][0]
    assert "oauth2_password" in bundle.form.errors
    assert "Enter the value again" in str(bundle.data.errors)
    # Typing the secrets again is fine, and so is another path on the same server.
    retyped = {**moved, "oauth2_client_secret": "c", "oauth2_password": "p"}
    assert bundle_for(
        retyped,
        rows={"data": [{"key": "tenant_secret", "value": "s-2"}]},
        instance=Connector.objects.get(pk=connector.pk),
    ).is_valid()
    same_server = {**moved, "oauth2_token_url": "https://login.example.com:443/v2/token"}
    assert bundle_for(
        same_server,
        rows={"data": [{"key": "tenant_secret", "value": ""}]},
        instance=Connector.objects.get(pk=connector.pk),
    ).is_valid()


STRAY = {
    "basic_username": "stray-user",
    "basic_password": "stray-basic-pw",
    "api_key_param_name": "stray_param",
    "api_key": "stray-key",
    "bearer_token": "stray-bearer",
    "oauth2_client_id": "stray-client",
    "oauth2_client_secret": "stray-secret",
    "oauth2_username": "stray-grant-user",
    "oauth2_password": "stray-grant-pw",
    "oauth2_password_scope": "stray-scope-1",
    "oauth2_client_credentials_scope": "stray-scope-2",
    "oauth2_refresh_token": "stray-refresh",
    "oauth2_refresh_token_scope": "stray-scope-3",
    "oauth2_token_url": "https://stray.example.com/token",
    "oauth2_custom_grant_type": "stray_grant",
}
VALID_CHOICES = [
    ({"auth_config": "none"}, set()),
    (
        {"auth_config": "basic", "basic_username": "u", "basic_password": "p"},
        {"basic_username", "basic_password"},
    ),
    ({"auth_config": "api_key", "api_key_location": "header", "api_key": "k"}, {"api_key"}),
    (
        {
            "auth_config": "api_key",
            "api_key_location": "param",
            "api_key_param_name": "key",
            "api_key": "k",
        },
        {"api_key", "api_key_param_name"},
    ),
    ({"auth_config": "bearer", "bearer_token": "t"}, {"bearer_token"}),
    (
        {**OAUTH2_PASSWORD, "oauth2_password_scope": "read"},
        {
            "oauth2_client_id",
            "oauth2_client_secret",
            "oauth2_username",
            "oauth2_password",
            "oauth2_password_scope",
            "oauth2_token_url",
            "oauth2_custom_grant_type",
        },
    ),
    (
        {
            "auth_config": "oauth2",
            "oauth2_grant_type": "client_credentials",
            "oauth2_client_id": "c",
            "oauth2_client_secret": "s",
            "oauth2_client_credentials_scope": "read",
            "oauth2_token_url": "https://login.example.com/t",
        },
        {
            "oauth2_client_id",
            "oauth2_client_secret",
            "oauth2_client_credentials_scope",
            "oauth2_token_url",
            "oauth2_custom_grant_type",
        },
    ),
    (
        {
            "auth_config": "oauth2",
            "oauth2_grant_type": "refresh_token",
            "oauth2_refresh_token": "r",
            "oauth2_refresh_token_scope": "read",
            "oauth2_token_url": "https://login.example.com/t",
        },
        {
            "oauth2_refresh_token",
            "oauth2_refresh_token_scope",
            "oauth2_token_url",
            "oauth2_custom_grant_type",
            "oauth2_client_id",
            "oauth2_client_secret",
        },
    ),
]


@pytest.mark.parametrize(("choice", "kept"), VALID_CHOICES)
def test_each_choice_stores_only_its_own_fields(choice, kept):
    """The other half of the matrix: everything a choice does not use is dropped on save."""
    bundle = bundle_for({**STRAY, **choice})
    assert bundle.is_valid(), bundle.form.errors
    instance = bundle.form.instance
    for name in STRAY:
        default = Connector._meta.get_field(name).get_default()
        if name in kept:
            assert getattr(instance, name) == {**STRAY, **choice}[name], name
        else:
            assert getattr(instance, name) == default, name


def test_every_field_rule_of_the_form_also_applies_without_the_form():
    """Import and pinning check fields by the same rules: none may exist only on the form."""
    from connectors.forms import ConnectorForm
    from connectors.rules.check import _field_hooks

    on_form = {
        name.removeprefix("clean_") for name in dir(ConnectorForm) if name.startswith("clean_")
    }
    assert on_form == set(_field_hooks(None, []))


# For OAuth2 the access token goes to Base URL + Test request path: moving the Base URL to
# another server would deliver a fresh token there, so the secrets must be typed again.


def _moved_base(**extra):
    return {
        **OAUTH2_PASSWORD,
        "oauth2_client_secret": "",
        "oauth2_password": "",
        "base_url": "https://attacker.example.net",
        "oauth2_header_auth_key": "X-Stolen",
        "oauth2_header_auth_value_pattern": "%s",
        "version": 1,
        **extra,
    }


def test_oauth2_secrets_are_typed_again_when_the_base_url_moves(make_connector):
    connector = make_connector(rows={"data": [{"key": "tenant_secret", "value": "s-1"}]})
    rows = {"data": [{"key": "tenant_secret", "value": ""}]}
    bundle = bundle_for(_moved_base(), rows=rows, instance=connector)
    assert not bundle.is_valid()
    secret_error = bundle.form.errors["oauth2_client_secret"][0]
    assert "Base URL" in secret_error and "attacker.example.net" in secret_error
    assert "oauth2_password" in bundle.form.errors
    assert "Enter the value again: the Base URL" in str(bundle.data.errors)
    # Typing everything again is fine, and so is another path on the same server, or no API.
    retyped = _moved_base(oauth2_client_secret="c", oauth2_password="p")
    fresh_rows = {"data": [{"key": "tenant_secret", "value": "s-2"}]}
    again = Connector.objects.get(pk=connector.pk)
    assert bundle_for(retyped, rows=fresh_rows, instance=again).is_valid()
    for base_url in ("https://api.example.com:443/v2", ""):
        same = _moved_base(base_url=base_url)
        again = Connector.objects.get(pk=connector.pk)
        assert bundle_for(same, rows=rows, instance=again).is_valid(), base_url


def test_the_base_url_rule_applies_without_the_form_too(make_connector):
    """Import and pinning check through connector_check: the same refusal."""
    from connectors.domain import StoredConnector
    from connectors.rules import connector_check

    connector = make_connector(rows={"data": [{"key": "tenant_secret", "value": "s-1"}]})
    values = {**_moved_base(), "name": "hr_portal", "enabled": True}
    check = connector_check(
        values=values,
        rows={"data": [{"key": "tenant_secret", "value": ""}]},
        instance=connector,
        stored=StoredConnector.of(connector),
    )
    assert not check.ok
    where = dict(check.error_list(json_keys=True))
    assert "Base URL" in where["Client Secret"], where
    assert "Base URL" in where["Password Grant Password"]
    assert "Base URL" in where["additional_request_data[0].value"]


@pytest.mark.parametrize(
    ("path", "ok"),
    [
        ("/api/v1/me", True),
        ("/files/a%2Fb?x=1", True),  # an encoded slash inside the path stays on the server
        ("/me?next=/home", True),
        ("//attacker.example.net/x", False),
        ("/\\attacker.example.net", False),
        ("\\\\attacker.example.net", False),
        ("https://attacker.example.net/x", False),
        ("/%2F%2Fattacker.example.net", False),
        ("/%2f/attacker.example.net", False),
        ("/%252F%252Fattacker.example.net", False),  # decoded twice
        ("/%5Cattacker.example.net", False),
        ("/redirect?to=https%3A%2F%2Fattacker.example.net", False),
        ("/\uff0fattacker.example.net", False),  # fullwidth solidus: NFKC reads it as /
        ("/\ufe68attacker.example.net", False),  # small reverse solidus: NFKC reads it as \
        ("/x\u200b", False),  # invisible
        ("/x\x7f", False),
        ("/x%00", False),
        ("api/v1", False),
    ],
)
def test_the_test_request_path_never_leaves_the_base_url_server(path, ok):
    bundle = bundle_for({**OAUTH2_PASSWORD, "test_request_path": path})
    assert bundle.is_valid() is ok, bundle.form.errors.get("test_request_path")
    if not ok:
        assert bundle.form.errors["test_request_path"]


def test_base_url_and_path_are_joined_on_the_base_url_server():
    from connectors.domain import api_url_join, url_origin

    for base in (
        "https://api.example.com",
        "https://api.example.com/",
        "https://api.example.com/v1",
    ):
        for path in ("/me", "//other.example.net/me"):
            assert url_origin(api_url_join(base, path)) == url_origin(base)


def test_setting_a_base_url_where_there_was_none_also_needs_the_secrets(make_connector):
    connector = make_connector(base_url="", **OAUTH2_PASSWORD)
    assert connector.base_url == ""
    bundle = bundle_for(_moved_base(), instance=Connector.objects.get(pk=connector.pk))
    assert not bundle.is_valid()
    assert "Base URL" in bundle.form.errors["oauth2_client_secret"][0]
