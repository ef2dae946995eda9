"""The OpenAPI schema: valid OpenAPI 3, every endpoint in it, no secret in it; and schemathesis
property tests from it against the live server (bounded examples: no 5xx, responses conform)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from unittest import mock

import pytest
from django.urls import URLPattern, URLResolver, get_resolver
from drf_spectacular.generators import SchemaGenerator
from drf_spectacular.validation import validate_schema

from connectors.api.tokens import api_token_create
from connectors.domain import ALL_SECRET_FIELDS, TYPED_SECRET_FIELDS
from tests.conftest import OAUTH2_PASSWORD, make_user

MAX_EXAMPLES = 12


def api_schema() -> dict:
    return json.loads(json.dumps(SchemaGenerator().get_schema(request=None, public=True)))


def api_routes() -> set[str]:
    """Every /api/v1/ route the URLconf has, in OpenAPI's {param} spelling."""
    found: set[str] = set()

    def walk(patterns: list, prefix: str) -> None:
        for p in patterns:
            route = prefix + str(p.pattern)
            if isinstance(p, URLResolver):
                walk(p.url_patterns, route)
            elif isinstance(p, URLPattern) and route.startswith("api/v1/"):
                found.add("/" + route.replace("<str:name>", "{name}").replace("<str:pk>", "{id}"))

    walk(get_resolver().url_patterns, "")
    return found


def test_schema_is_valid_openapi_3_with_every_endpoint() -> None:
    schema = api_schema()
    validate_schema(schema)  # raises on anything OpenAPI 3 does not allow
    assert schema["openapi"].startswith("3.")
    paths = {p.replace("{pk}", "{id}") for p in schema["paths"]}
    assert api_routes() <= paths, api_routes() - paths
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            assert (
                "200" in operation["responses"]
                or "201" in operation["responses"]
                or ("204" in operation["responses"])
            ), (path, method)
            if method in {"post", "patch"} and not path.endswith("/test/"):
                assert "requestBody" in operation, (path, method)


def test_secrets_are_write_only_in_the_schema() -> None:
    schema = api_schema()
    components = schema["components"]["schemas"]
    read = components["Connector"]["properties"]
    write = components["ConnectorInRequest"]["properties"]
    for name in TYPED_SECRET_FIELDS:
        assert read[name]["allOf"][0]["$ref"].endswith("/Stored") or "$ref" in str(read[name])
        assert write[name]["type"] == "string"
    # The refresh token Connect obtains is never written through the API, only shown as stored.
    assert "oauth2_authorization_code_refresh_token" not in read
    assert "oauth2_authorization_code_refresh_token" not in write
    connection = components["Connection"]["properties"]
    assert "$ref" in str(connection["refresh_token"])
    text = json.dumps(schema)
    for name, value in OAUTH2_PASSWORD.items():
        if name in ALL_SECRET_FIELDS:
            assert value not in text
    for name in TYPED_SECRET_FIELDS:
        assert "example" not in json.dumps(write[name]) and "default" not in write[name]


@pytest.mark.django_db(transaction=True)
def test_schemathesis_against_the_live_server(live_server, tmp_path: Path, make_connector) -> None:
    """Generated requests for every operation: no 5xx, and every answer matches the schema."""
    user = make_user("admin", "fuzz")
    user.is_superuser = True  # every endpoint, export of secrets included
    user.save()
    make_connector(name="hr_portal")
    token = api_token_create(user=user, name="schemathesis", expires_days=1)
    schema_file = tmp_path / "schema.json"
    schema_file.write_text(json.dumps(api_schema()))
    command = [
        str(Path(sys.executable).with_name("st")),
        "run",
        str(schema_file),
        "--url",
        live_server.url,
        "-H",
        f"Authorization: Token {token}",
        "--max-examples",
        str(MAX_EXAMPLES),
        "--checks",
        "not_a_server_error,response_schema_conformance,content_type_conformance",
        "--phases",
        "examples,fuzzing",
        "--seed",
        "11",
        "--no-shrink",
        "--workers",
        "1",
        # The connection test and a batch send requests to the connector's servers: the unit
        # tests cover them with loopback peers (tests/test_api_batches.py); generated URLs must
        # never be fetched. (Only POST is on /batches/; GET /batches/{id}/ stays in.)
        "--exclude-path-regex",
        "/(test|batches)/$",
        "--request-timeout",
        "20",
        "--max-time",
        "75",
    ]
    with mock.patch(
        "rest_framework.throttling.SimpleRateThrottle.THROTTLE_RATES", {"token": "100000/min"}
    ):
        result = subprocess.run(command, capture_output=True, text=True, timeout=170, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
