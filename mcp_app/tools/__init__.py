"""The personal-assistant tools: one module per domain, each exporting `TOOLS`; see `registry`."""
