"""The floor of the house: the contract, settings, logs and the decision table.

Imports nothing else of the project; `authz_service`, `mcp_app` and the commands import it.
"""
