"""Forms of the connector inventory, by role.

connector: the connector form (Auth Config and its conditional groups); rows: the token
request's key/value formsets; bundle: both validated together; transfer: import and export.
The rules they apply live in connectors.rules, shared with import and pinning.
"""

from connectors.domain import ParamRow, url_origin
from connectors.forms.bundle import ConnectorForms, connector_forms
from connectors.forms.connector import (
    OAUTH2_ADDITIONAL_FIELDS,
    STORED_LABEL,
    ConnectorForm,
    SecretFieldView,
    SecretInput,
    sensitive_name_rule,
)
from connectors.forms.rows import (
    BaseParamFormSet,
    DataFormSet,
    HeaderFormSet,
    ParamForm,
    shown_rows,
)
from connectors.forms.transfer import ExportForm, ImportForm
from connectors.rules import MAX_PARAM_ROWS, absolute_http_url_errors

__all__ = [
    "MAX_PARAM_ROWS",
    "OAUTH2_ADDITIONAL_FIELDS",
    "STORED_LABEL",
    "BaseParamFormSet",
    "ConnectorForm",
    "ConnectorForms",
    "DataFormSet",
    "ExportForm",
    "HeaderFormSet",
    "ImportForm",
    "ParamForm",
    "ParamRow",
    "SecretFieldView",
    "SecretInput",
    "absolute_http_url_errors",
    "connector_forms",
    "sensitive_name_rule",
    "shown_rows",
    "url_origin",
]
