"""Helpers shared by the test suites: processes, ports, the session PostgreSQL, forgeries."""
