"""The connector's validation rules, shared by the form, import, pinning and a later API.

connector: field rules and the Auth Config rules; rows: the token request's key/value rows;
check: the whole set applied to plain values, without a form.
"""

from connectors.rules.check import ConnectorCheck, connector_check, errors_listed
from connectors.rules.connector import (
    ERROR_MESSAGES,
    FORBIDDEN_VALUE_CHARS_RE,
    HEADER_NAME_RE,
    OPTIONAL_FIELDS,
    RESERVED_NAMES,
    Checked,
    absolute_http_url_errors,
    ca_bundle_clean,
    connector_clean,
    name_clean,
    plain_http_warning,
    request_path_clean,
    rows_destination_moved,
    secret_destination_moved,
    token_destination_changed,
    url_clean,
)
from connectors.rules.rows import (
    ABSOLUTE_MAX_PARAM_ROWS,
    MAX_PARAM_KEY_LENGTH,
    MAX_PARAM_ROWS,
    MAX_PARAM_VALUE_LENGTH,
    RESERVED_AUTHORIZE_KEYS,
    RESERVED_BODY_KEYS,
    RESERVED_HEADERS,
    row_fields,
    row_is_sensitive,
    rows_clean,
    rows_for_grant,
    rows_refuse_kept_values,
    rows_resolved,
)
from connectors.rules.testing import TestRefused, connector_test_check_allowed

__all__ = [
    "ABSOLUTE_MAX_PARAM_ROWS",
    "ERROR_MESSAGES",
    "FORBIDDEN_VALUE_CHARS_RE",
    "HEADER_NAME_RE",
    "MAX_PARAM_KEY_LENGTH",
    "MAX_PARAM_ROWS",
    "MAX_PARAM_VALUE_LENGTH",
    "OPTIONAL_FIELDS",
    "RESERVED_AUTHORIZE_KEYS",
    "RESERVED_BODY_KEYS",
    "RESERVED_HEADERS",
    "RESERVED_NAMES",
    "Checked",
    "TestRefused",
    "ConnectorCheck",
    "absolute_http_url_errors",
    "ca_bundle_clean",
    "connector_check",
    "connector_clean",
    "connector_test_check_allowed",
    "errors_listed",
    "name_clean",
    "plain_http_warning",
    "request_path_clean",
    "row_fields",
    "row_is_sensitive",
    "rows_clean",
    "rows_for_grant",
    "rows_refuse_kept_values",
    "rows_resolved",
    "rows_destination_moved",
    "secret_destination_moved",
    "token_destination_changed",
    "url_clean",
]
