"""`make bench` (`python -m bench`): load tests of the authz service, the Envoy front door and the full MCP path.

Parts: 1 Check direct over gRPC, 2 through Envoy with TLS, 3 the full MCP path, 4 memory.
Results go to `bench/results/<timestamp>/` (report.md, report.json, chart.png); see docs/bench.md.
"""
