"""The gRPC ext_authz service: credentials → provider → identity → tenant → permissions → response.

Read it in that order: `credentials.py`, `providers/`, `cache.py`, `tenancy.py`, `policy.py`,
`response.py`; `pipeline.py` strings them together and `server.py` serves it over gRPC.
"""
