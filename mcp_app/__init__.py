"""The MCP app: trusted identity headers → personal-assistant tools → tenant schemas in PostgreSQL."""
