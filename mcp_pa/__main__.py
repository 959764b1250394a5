"""`python -m mcp_pa` is the `mcp-pa` command."""

import sys

from mcp_pa.cli import main

sys.exit(main())
