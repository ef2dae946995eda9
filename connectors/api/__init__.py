"""The JSON API (/api/v1/): the pages' rules, roles and audit, for automation.

It sits at the views layer: it validates through connectors.rules (via connectors.transfer's
readers and rules.check), changes through connectors.services, and reads through the selectors.
"""
