"""`mcp-pa up`: the whole stack on one machine (supervisor, dev certificates, Envoy configs)."""
