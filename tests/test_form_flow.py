"""The connector form as ops staff use it (issue 9): a failed submit never loses a typed secret,
errors are summarised where they are, a stale edit shows who saved and what differs."""

from __future__ import annotations

import re
import time
from unittest import mock

import pytest
from django.test import Client

from connectors import explain
from connectors.forms import carry as carry_module
from connectors.forms.carry import SESSION_KEY, TOKEN_FIELD
from connectors.models import Connector
from connectors.oauth_http import Facts, Outcome, TokenResult
from tests.conftest import OAUTH2_PASSWORD, form_data, make_user

pytestmark = pytest.mark.django_db

SECRET = "typed-secret-Zq81"
BAD_URL = "htps:/login.exmaple.com token"


def _token(page: str) -> str:
    match = re.search(rf'name="{TOKEN_FIELD}" value="([^"]+)"', page)
    assert match, "the form carries its token"
    return match.group(1)


def _new_oauth2(**values):
    fields = {
        "name": "hr_portal",
        "base_url": "https://api.example.com",
        "enabled": True,
        **OAUTH2_PASSWORD,
    }
    fields.update(values)
    return fields


def _first_submit(client: Client, url: str, values: dict, rows=None) -> tuple[str, str]:
    """GET the form for its token, then post `values` (which fail); returns (token, page)."""
    token = _token(client.get(url).content.decode())
    response = client.post(url, form_data({**values, TOKEN_FIELD: token}, rows))
    assert response.status_code == 400
    return token, response.content.decode()


# -------------------------------------------------------------------------------------------
# 1. Carried secrets


def test_a_failed_new_submit_keeps_typed_secrets_without_rendering_them(admin_client):
    values = _new_oauth2(
        oauth2_token_url=BAD_URL, oauth2_client_secret=SECRET, oauth2_password=SECRET + "-pw"
    )
    token, page = _first_submit(admin_client, "/connectors/new/", values)
    assert SECRET not in page
    assert 'data-cc-kept="oauth2_client_secret"' in page
    assert 'data-cc-kept="oauth2_password"' in page
    assert "Kept from your last submit" in page
    assert 'name="oauth2_client_secret_forget"' in page  # the clear control, a plain checkbox
    # The session holds ciphertext only.
    session = admin_client.session
    assert SECRET not in str(dict(session.items()))
    # Fixing the URL and leaving the secrets blank saves them.
    fixed = {**values, "oauth2_token_url": "https://login.example.com/oauth2/token"}
    fixed.update(oauth2_client_secret="", oauth2_password="", **{TOKEN_FIELD: token})
    response = admin_client.post("/connectors/new/", form_data(fixed))
    assert response.status_code == 302, response.content.decode()[:3000]
    connector = Connector.objects.get(name="hr_portal")
    assert connector.oauth2_client_secret == SECRET
    assert connector.oauth2_password == SECRET + "-pw"
    assert not admin_client.session.get(SESSION_KEY)  # nothing carried after the save


def test_a_second_failed_submit_keeps_carrying_and_the_html_never_holds_it(admin_client):
    values = _new_oauth2(oauth2_token_url=BAD_URL, oauth2_client_secret=SECRET)
    token, _ = _first_submit(admin_client, "/connectors/new/", values)
    again = {**values, "oauth2_client_secret": "", "base_url": "not a url", TOKEN_FIELD: token}
    page = admin_client.post("/connectors/new/", form_data(again)).content.decode()
    assert SECRET not in page
    assert 'data-cc-kept="oauth2_client_secret"' in page


def test_the_clear_box_forgets_the_carried_value(admin_client):
    values = _new_oauth2(oauth2_token_url=BAD_URL, oauth2_client_secret=SECRET)
    token, page = _first_submit(admin_client, "/connectors/new/", values)
    assert 'data-cc-kept="oauth2_client_secret"' in page  # carried, so the test below bites
    fixed = {
        **values,
        "oauth2_token_url": "https://login.example.com/oauth2/token",
        "oauth2_client_secret": "",
        "oauth2_client_secret_forget": True,
        TOKEN_FIELD: token,
    }
    assert admin_client.post("/connectors/new/", form_data(fixed)).status_code == 302
    assert Connector.objects.get(name="hr_portal").oauth2_client_secret == ""


def test_a_value_typed_now_wins_over_the_carried_one(admin_client):
    values = _new_oauth2(oauth2_token_url=BAD_URL, oauth2_client_secret=SECRET)
    token, page = _first_submit(admin_client, "/connectors/new/", values)
    assert 'data-cc-kept="oauth2_client_secret"' in page  # carried, so the test below bites
    fixed = {
        **values,
        "oauth2_token_url": "https://login.example.com/oauth2/token",
        "oauth2_client_secret": "newer",
        TOKEN_FIELD: token,
    }
    assert admin_client.post("/connectors/new/", form_data(fixed)).status_code == 302
    assert Connector.objects.get(name="hr_portal").oauth2_client_secret == "newer"


def test_the_carry_is_bound_to_the_form_token_the_session_and_the_user(admin_client):
    values = _new_oauth2(oauth2_token_url=BAD_URL, oauth2_client_secret=SECRET)
    token, page = _first_submit(admin_client, "/connectors/new/", values)
    assert 'data-cc-kept="oauth2_client_secret"' in page  # carried, so the test below bites
    fixed = {
        **values,
        "oauth2_token_url": "https://login.example.com/oauth2/token",
        "oauth2_client_secret": "",
    }
    # Another form (another token) of the same session gets nothing.
    other = admin_client.post("/connectors/new/", form_data({**fixed, TOKEN_FIELD: "x" * 24}))
    assert other.status_code == 302
    assert Connector.objects.get(name="hr_portal").oauth2_client_secret == ""
    Connector.objects.all().delete()
    # Another session of another admin, with the same token, gets nothing either.
    intruder = Client()
    intruder.force_login(make_user("admin", username="other_admin"))
    response = intruder.post("/connectors/new/", form_data({**fixed, TOKEN_FIELD: token}))
    assert response.status_code == 302
    assert Connector.objects.get(name="hr_portal").oauth2_client_secret == ""


def test_a_blob_copied_to_another_users_session_is_refused(admin_client):
    values = _new_oauth2(oauth2_token_url=BAD_URL, oauth2_client_secret=SECRET)
    token, _ = _first_submit(admin_client, "/connectors/new/", values)
    entries = admin_client.session[SESSION_KEY]
    intruder = Client()
    intruder.force_login(make_user("admin", username="other_admin"))
    session = intruder.session
    session[SESSION_KEY] = entries
    session.save()
    fixed = {
        **values,
        "oauth2_token_url": "https://login.example.com/oauth2/token",
        "oauth2_client_secret": "",
        TOKEN_FIELD: token,
    }
    assert intruder.post("/connectors/new/", form_data(fixed)).status_code == 302
    assert Connector.objects.get(name="hr_portal").oauth2_client_secret == ""


def test_an_expired_carry_is_marked_at_the_field(admin_client, monkeypatch):
    values = _new_oauth2(oauth2_token_url=BAD_URL, oauth2_password=SECRET)
    token, _ = _first_submit(admin_client, "/connectors/new/", values)
    later = time.time() + carry_module.CARRY_SECONDS + 5
    monkeypatch.setattr(carry_module.time, "time", lambda: later)
    fixed = {
        **values,
        "oauth2_token_url": "https://login.example.com/oauth2/token",
        "oauth2_password": "",
        TOKEN_FIELD: token,
    }
    with mock.patch("cryptography.fernet.time.time", return_value=later):
        response = admin_client.post("/connectors/new/", form_data(fixed))
    page = response.content.decode()
    assert response.status_code == 400
    assert 'data-cc-retype="oauth2_password"' in page
    assert "expired after 10 minutes" in page
    assert 'data-cc-kept="oauth2_password"' not in page


def test_a_secret_of_an_auth_config_left_behind_is_marked_to_type_again(admin_client):
    values = {
        "name": "basic_one",
        "base_url": "not a url",
        "auth_config": "basic",
        "basic_username": "u",
        "basic_password": SECRET,
    }
    token, _ = _first_submit(admin_client, "/connectors/new/", values)
    # The user switches to Bearer (and still has an error), then back to Basic.
    switched = {**values, "auth_config": "bearer", "basic_password": "", TOKEN_FIELD: token}
    page = admin_client.post("/connectors/new/", form_data(switched)).content.decode()
    assert 'data-cc-retype="basic_password"' in page
    assert "Auth Config or grant type changed" in page
    back = {**values, "base_url": "https://api.example.com", "basic_password": ""}
    response = admin_client.post("/connectors/new/", form_data({**back, TOKEN_FIELD: token}))
    assert response.status_code == 400  # nothing carried: the password is required again
    assert 'data-cc-retype="basic_password"' in response.content.decode()


def test_edit_carries_a_new_secret_and_a_blank_still_keeps_the_stored_one(
    admin_client, make_connector
):
    make_connector("hr_portal")
    url = "/connectors/hr_portal/edit/"
    values = {**_new_oauth2(), "version": 1, "oauth2_token_url": BAD_URL}
    values.update(oauth2_client_secret=SECRET, oauth2_password="")
    token, page = _first_submit(admin_client, url, values)
    assert SECRET not in page and "user-password-1" not in page
    assert 'data-cc-kept="oauth2_client_secret"' in page
    assert 'data-cc-kept="oauth2_password"' not in page  # blank: the stored one stays
    fixed = {
        **values,
        "oauth2_token_url": "https://login.example.com/oauth2/token",
        "oauth2_client_secret": "",
        TOKEN_FIELD: token,
    }
    assert admin_client.post(url, form_data(fixed)).status_code == 302
    connector = Connector.objects.get(name="hr_portal")
    assert connector.oauth2_client_secret == SECRET
    assert connector.oauth2_password == "user-password-1"


def test_clone_carries_secrets_and_flags_those_not_copied(admin_client, make_connector):
    make_connector("hr_portal")
    url = "/connectors/hr_portal/clone/"
    page = admin_client.get(url).content.decode()
    assert 'data-cc-unset="oauth2_client_secret"' in page
    assert "Not copied from hr_portal, which has one" in page
    values = {**_new_oauth2(name="hr_copy"), "oauth2_token_url": BAD_URL}
    values.update(oauth2_client_secret="", oauth2_password=SECRET)
    token, page = _first_submit(admin_client, url, values)
    assert SECRET not in page
    assert 'data-cc-kept="oauth2_password"' in page
    assert 'data-cc-unset="oauth2_client_secret"' in page  # still empty: still flagged
    fixed = {
        **values,
        "oauth2_token_url": "https://login.example.com/oauth2/token",
        "oauth2_password": "",
        TOKEN_FIELD: token,
    }
    assert admin_client.post(url, form_data(fixed)).status_code == 302
    assert Connector.objects.get(name="hr_copy").oauth2_password == SECRET


def test_a_sensitive_row_value_is_carried_too(admin_client):
    values = _new_oauth2(oauth2_token_url=BAD_URL)
    rows = {
        "headers": [
            {"key": "X-Plain", "value": "plain-value"},
            {"key": "X-Api-Token", "value": SECRET, "sensitive": True},
        ]
    }
    token, page = _first_submit(admin_client, "/connectors/new/", values, rows)
    assert SECRET not in page
    assert page.count("data-cc-kept-row") == 1
    assert 'name="headers-1-value_forget"' in page
    # The rows moved (one added on top) and the value box is blank: the value follows its name.
    moved = {
        "headers": [
            {"key": "X-First", "value": "1"},
            {"key": "X-Plain", "value": "plain-value"},
            {"key": "x-api-token", "value": "", "sensitive": True},
        ]
    }
    fixed = {**values, "oauth2_token_url": "https://login.example.com/oauth2/token"}
    response = admin_client.post(
        "/connectors/new/", form_data({**fixed, TOKEN_FIELD: token}, moved)
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    row = Connector.objects.get(name="hr_portal").params.get(key="x-api-token")
    assert row.value == SECRET and row.sensitive


def test_an_optional_client_secret_left_empty_on_a_new_connector_is_flagged(admin_client):
    page = admin_client.get("/connectors/new/").content.decode()
    assert 'data-cc-unset="oauth2_client_secret"' in page
    assert "Not set — the test will fail if the server needs it." in page
    assert 'data-cc-show-when="auth_config=oauth2 oauth2_grant_type=password|refresh_token"' in page


def test_the_form_test_uses_the_carried_secrets(admin_client, monkeypatch):
    values = _new_oauth2(oauth2_token_url=BAD_URL, oauth2_client_secret=SECRET)
    token, _ = _first_submit(admin_client, "/connectors/new/", values)
    seen = {}

    from connectors.rules import TestRefused

    def fake_test(*, connector, user, source, rows):
        seen["secret"] = connector.oauth2_client_secret
        raise TestRefused("stop here", action="blocked")

    monkeypatch.setattr("connectors.views.testing.connector_test", fake_test)
    fixed = {
        **values,
        "oauth2_token_url": "https://login.example.com/oauth2/token",
        "oauth2_client_secret": "",
        TOKEN_FIELD: token,
    }
    admin_client.post("/connectors/new/test/", form_data(fixed))
    assert seen["secret"] == SECRET


# -------------------------------------------------------------------------------------------
# 2. Missing, not wrong


def _rejected(grant: str) -> TokenResult:
    facts = Facts(client_rejected=True, grant_type=grant, status=401)
    return mock.Mock(spec=TokenResult, ok=False, outcome=Outcome.INVALID_CLIENT, facts=facts)


def test_a_refusal_with_a_secret_never_set_says_missing():
    hint = explain.secret_missing_hint(_rejected("password"), empty=["oauth2_client_secret"])
    assert "Client Secret is not set" in hint and "missing, not wrong" in hint
    assert explain.secret_missing_hint(_rejected("password"), empty=[]) == ""
    assert explain.secret_missing_hint(_rejected("password"), empty=["api_key"]) == ""


@pytest.mark.usefixtures("loopback_allowed")
def test_a_connector_saved_without_its_client_secret_is_told_it_is_missing(
    make_connector, fault_server, settings
):
    """End to end: the real token request to a loopback server that wants the secret."""
    from connectors.connection_test import connector_test

    settings.CONNECTORS_TOKEN_TIMEOUT = 2.0
    values = {
        **OAUTH2_PASSWORD,
        "oauth2_client_id": fault_server.client_id,
        "oauth2_client_secret": "",
        "oauth2_token_url": fault_server.url("/body-only"),
    }
    outcome = connector_test(connector=make_connector("public_one", **values))
    assert outcome.run.outcome == "invalid_client"
    assert "Client Secret is not set" in outcome.run.hint
    assert "missing, not wrong" in outcome.run.hint
    # With a (wrong) secret set, the hint stays the "check it" one.
    values["oauth2_client_secret"] = "wrong-secret"
    outcome = connector_test(connector=make_connector("wrong_one", **values))
    assert outcome.run.outcome == "invalid_client"
    assert "not set" not in outcome.run.hint


# -------------------------------------------------------------------------------------------
# 3. Error summary


def test_the_error_summary_counts_and_links_each_error_to_its_field(admin_client):
    values = _new_oauth2(oauth2_token_url=BAD_URL, base_url="nope")
    rows = {"headers": [{"key": "Bad Header", "value": "x"}, {"key": "Host", "value": "h"}]}
    _token_value, page = _first_submit(admin_client, "/connectors/new/", values, rows)
    summary = page[
        page.index('id="error-summary"') : page.index("</ul>", page.index('id="error-summary"'))
    ]
    assert "4 problems to fix before saving" in summary
    assert 'href="#id_base_url"' in summary and 'href="#id_oauth2_token_url"' in summary
    assert 'href="#id_headers-0-key"' in summary and "Additional Headers row 1 name:" in summary
    assert 'href="#id_headers-1-key"' in summary and "Additional Headers row 2 name:" in summary
    assert "Please correct the errors below" not in page
    # The summary is the form's first element and can take the focus.
    form_start = page.index('<form method="post" novalidate id="connector-form"')
    assert page.index('id="error-summary"') - form_start < 200
    assert 'tabindex="-1" autofocus' in summary


def test_no_summary_on_a_first_load(admin_client):
    assert 'id="error-summary"' not in admin_client.get("/connectors/new/").content.decode()


# -------------------------------------------------------------------------------------------
# 4. Stale edit


def test_a_stale_edit_says_who_and_when_and_shows_the_difference(make_connector):
    other = make_user("admin", username="alice")
    me = make_user("admin", username="bob")
    make_connector("hr_portal", user=other)
    alice, bob = Client(), Client()
    alice.force_login(other)
    bob.force_login(me)
    url = "/connectors/hr_portal/edit/"
    theirs = form_data(
        {
            **_new_oauth2(),
            "version": 1,
            "display_name": "Theirs",
            "oauth2_client_secret": "their-new-secret",
        }
    )
    assert alice.post(url, theirs).status_code == 302
    mine = {**_new_oauth2(), "version": 1, "display_name": "Mine"}
    mine.update(oauth2_client_secret="", oauth2_password=SECRET)
    token = _token(bob.get(url).content.decode())
    response = bob.post(url, form_data({**mine, TOKEN_FIELD: token}))
    page = response.content.decode()
    assert response.status_code == 409
    saved = Connector.objects.get(name="hr_portal")
    stamp = saved.updated_at.strftime("%Y-%m-%d %H:%M:%S")
    assert f"{stamp} UTC</time> by alice (version 2)" in page
    assert "Please correct the errors below" not in page and 'id="error-summary"' not in page
    assert SECRET not in page and "their-new-secret" not in page and "user-password-1" not in page
    table = page[page.index("cc-conflict-table") : page.index("</table>")]
    assert "Theirs" in table and "Mine" in table
    assert re.search(
        r"Client Secret.*changed meanwhile.*secret changed.*secret unchanged", table, re.S
    )
    assert re.search(r"Password Grant Password.*secret unchanged.*secret changed", table, re.S)
    assert 'data-cc-kept="oauth2_password"' in page  # the typed secret is carried too
    # "Save mine over theirs" posts the version it compared against, and saves.
    over = form_data({**mine, "oauth2_password": "", TOKEN_FIELD: token, "overwrite_version": 2})
    assert bob.post(url, over).status_code == 302
    saved.refresh_from_db()
    assert saved.display_name == "Mine" and saved.oauth2_password == SECRET
    assert saved.oauth2_client_secret == "their-new-secret"  # blank kept what is stored now


def test_a_stale_edit_by_the_same_user_says_you_in_another_tab(
    admin_client, admin_user, make_connector
):
    make_connector("hr_portal", user=admin_user)
    url = "/connectors/hr_portal/edit/"
    tab1 = form_data({**_new_oauth2(), "version": 1, "display_name": "Tab 1"})
    assert admin_client.post(url, tab1).status_code == 302
    tab2 = form_data({**_new_oauth2(), "version": 1, "display_name": "Tab 2"})
    page = admin_client.post(url, tab2).content.decode()
    assert "you saved this connector in another tab" in page
    assert "by you, in another tab (version 2)" in page


# -------------------------------------------------------------------------------------------
# 5-7. Help text, defaults, the test button's help


def test_help_text_is_escaped(admin_client):
    page = admin_client.get("/connectors/new/").content.decode()
    assert "Authorization: Bearer &lt;token&gt;" in page
    assert "Bearer <token>" not in page


def test_prefilled_defaults_read_as_defaults_and_no_placeholder_looks_like_a_value(admin_client):
    page = admin_client.get("/connectors/new/").content.decode()
    for default in ("Authorization", "Bearer %s", "access_token", "expires_in"):
        assert f"Default: {default}" in page
    assert "Leave blank for Authorization" not in page
    placeholders = re.findall(r'placeholder="([^"]*)"', page)
    assert not [p for p in placeholders if "://" in p or "example" in p], placeholders


def test_the_test_buttons_help_fits_new_clone_and_edit(admin_client, make_connector):
    make_connector("hr_portal")
    stored_wording = "a blank secret uses the stored one"
    new = admin_client.get("/connectors/new/").content.decode()
    clone = admin_client.get("/connectors/hr_portal/clone/").content.decode()
    edit = admin_client.get("/connectors/hr_portal/edit/").content.decode()
    assert stored_wording not in new and "Nothing is stored yet" in new
    assert stored_wording not in clone and "secrets are not copied from hr_portal" in clone
    assert stored_wording in edit
    for page in (new, clone, edit):
        assert 'class="cc-action-bar"' in page


def test_secrets_survive_an_audit_log_that_cannot_be_written(admin_client):
    from audit.services import AuditWriteError

    values = _new_oauth2(oauth2_client_secret=SECRET)
    token = _token(admin_client.get("/connectors/new/").content.decode())
    with mock.patch("connectors.services.audit_record", side_effect=AuditWriteError()):
        response = admin_client.post("/connectors/new/", form_data({**values, TOKEN_FIELD: token}))
    page = response.content.decode()
    assert response.status_code == 503
    assert SECRET not in page and 'data-cc-kept="oauth2_client_secret"' in page
    assert "could not be recorded in the audit log" in page  # in the summary
    again = {**values, "oauth2_client_secret": "", TOKEN_FIELD: token}
    assert admin_client.post("/connectors/new/", form_data(again)).status_code == 302
    assert Connector.objects.get(name="hr_portal").oauth2_client_secret == SECRET


def test_save_mine_over_theirs_is_refused_again_after_a_third_save(admin_client, make_connector):
    make_connector("hr_portal")
    url = "/connectors/hr_portal/edit/"
    for version, name in ((1, "Second"), (2, "Third")):
        saved = form_data({**_new_oauth2(), "version": version, "display_name": name})
        assert admin_client.post(url, saved).status_code == 302
    # This form saw version 1, then the conflict page showed version 2: a third save came since.
    mine = form_data({**_new_oauth2(), "version": 1, "display_name": "Mine"})
    mine["overwrite_version"] = "2"
    response = admin_client.post(url, mine)
    assert response.status_code == 409
    assert "(version 3)" in response.content.decode()
    assert Connector.objects.get(name="hr_portal").display_name == "Third"
