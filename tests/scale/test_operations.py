"""Clean operations: quiet app logs, appended service logs, and no embedded PostgreSQL left behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import httpx
import psutil
import pytest

from mcp_pa.core import contract
from mcp_pa.core.postgres import EmbeddedPostgres, describe_dsn
from mcp_pa.up.stack import port_open
from tests.support.processes import REPO, Service, free_port, listening, mcp_pa_command, scratch_dir

REQUESTS = 30
IDENTITY = contract.Identity("ops-user", "ops", frozenset({contract.PERMISSION_READ, contract.PERMISSION_WRITE}), "api_key")


def postmaster_pid(pgdata: Path) -> int | None:
    """The pid of the PostgreSQL running in pgdata, or None when none runs there."""
    try:
        pid = int((pgdata / "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pid if psutil.pid_exists(pid) else None


def wait_gone(pid: int, timeout: float = 30.0) -> bool:
    try:
        psutil.Process(pid).wait(timeout)
    except psutil.NoSuchProcess:
        return True
    except psutil.TimeoutExpired:
        return False
    return True


@pytest.fixture()
def scratch() -> Iterator[Path]:
    with scratch_dir("mcp-pa-ops-") as root:
        yield root


def test_app_log_has_no_line_per_request(pg_dsn: str, scratch: Path) -> None:
    port = free_port()
    log = scratch / "app.log"
    env = {"MCP_HTTP_DATABASE_CONNECTION_STRING": pg_dsn, "MCP_HTTP_LOG_LEVEL": "INFO"}
    app = listening("app", mcp_pa_command("app", "--listen", f"127.0.0.1:{port}"), port, log, env)
    try:
        headers = {**IDENTITY.to_headers(), "content-type": "application/json", "accept": "application/json, text/event-stream",
                   "mcp-protocol-version": "2025-06-18"}
        body = {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "whoami", "arguments": {}}}
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            for _ in range(REQUESTS):
                reply = http.post(contract.MCP_PATH, json=body, headers=headers)
                assert reply.status_code == 200 and not reply.json()["result"].get("isError"), reply.text
    finally:
        app.stop()
    lines = log.read_text().splitlines()
    # Start, migration and shutdown lines only: fewer lines than requests, and none of the SDK's per-request INFO.
    assert not [line for line in lines if "Terminating session" in line], "\n".join(lines[-5:])
    assert len(lines) < REQUESTS, "\n".join(lines)


def test_service_log_is_appended_per_run_after_a_start_marker(scratch: Path) -> None:
    log = scratch / "svc.log"
    log.write_text("an older run's last line\n")
    for run in ("first", "second"):
        service = Service("svc", [sys.executable, "-c", f"print('{run} run'); import sys; sys.exit(3)"], log, lambda: False, cwd=REPO)
        service.start()
        assert service.proc is not None
        service.proc.wait(30)
    lines = log.read_text().splitlines()
    assert lines[0] == "an older run's last line" and "first run" in lines and "second run" in lines
    markers = [json.loads(line) for line in lines if line.startswith("{")]
    assert [m["message"] for m in markers] == ["--- svc starting ---"] * 2
    # The tail a failure shows is this run's only.
    assert "second run" in service.tail() and "first run" not in service.tail()
    assert "first run" not in service.failure()


def _holder(pgdata: Path) -> subprocess.Popen[str]:
    """A process that starts the embedded PostgreSQL, says so, and waits to be killed."""
    code = ("import sys, time; from pathlib import Path; from mcp_pa.core.postgres import EmbeddedPostgres, describe_dsn; "
            "pg = EmbeddedPostgres(Path(sys.argv[1])); print('up', flush=True); time.sleep(600)")
    proc = subprocess.Popen([sys.executable, "-c", code, str(pgdata)], cwd=REPO, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "up"
    return proc


def test_embedded_postgres_left_by_a_killed_process_is_reused_then_stopped(scratch: Path) -> None:
    pgdata = scratch / "pgdata"
    holder = _holder(pgdata)
    holder.send_signal(signal.SIGKILL)  # as a killed `up`: its handle is never released
    holder.wait(30)
    left = postmaster_pid(pgdata)
    assert left is not None, "the killed process's PostgreSQL should still run"
    postgres = EmbeddedPostgres(pgdata)
    assert postgres.reused and postmaster_pid(pgdata) == left
    postgres.close()
    assert wait_gone(left), "the reused PostgreSQL was not stopped"


def test_embedded_postgres_held_by_a_live_process_is_not_stopped(scratch: Path) -> None:
    pgdata = scratch / "pgdata"
    holder = _holder(pgdata)
    try:
        running = postmaster_pid(pgdata)
        EmbeddedPostgres(pgdata).close()
        assert postmaster_pid(pgdata) == running, "stopped a PostgreSQL another live process uses"
    finally:
        holder.kill()
        holder.wait(30)
        EmbeddedPostgres(pgdata).close()  # the holder is gone now: the last handle stops it
    assert running is not None and wait_gone(running)


def test_app_command_stops_the_embedded_postgres_it_started_on_sigterm(scratch: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MCP_HTTP_")}
    env["MCP_HTTP_STATE_DIR"] = str(scratch)
    app = Service("app", mcp_pa_command("app", "--listen", f"127.0.0.1:{port}"), scratch / "app.log", port_open(port), env, REPO).run(120)
    running = postmaster_pid(scratch / "pgdata")
    assert running is not None
    assert app.proc is not None
    app.proc.send_signal(signal.SIGTERM)
    app.proc.wait(60)
    assert app.proc.returncode == -signal.SIGTERM, app.tail()
    assert wait_gone(running), "mcp-pa app left its embedded PostgreSQL running:\n" + app.tail()


def test_db_migrate_refuses_to_create_an_embedded_database(scratch: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MCP_HTTP_")}
    env["MCP_HTTP_STATE_DIR"] = str(scratch / "state")
    done = subprocess.run(mcp_pa_command("db", "migrate"), env=env, cwd=scratch, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "no database" in done.stderr and "MCP_HTTP_DATABASE_CONNECTION_STRING" in done.stderr
    assert not (scratch / "state" / "pgdata").exists()


def test_a_printed_dsn_never_shows_the_password() -> None:
    assert describe_dsn("postgresql://app:s3cret@db.example:5432/mcp") == "postgresql://app:***@db.example:5432/mcp"
    assert describe_dsn("postgresql://postgres:@/postgres?host=/tmp/x") == "postgresql://postgres:@/postgres?host=/tmp/x"


def test_db_migrate_names_the_database_it_uses(pg_dsn: str, scratch: Path) -> None:
    env = {**os.environ, "MCP_HTTP_DATABASE_CONNECTION_STRING": pg_dsn}
    done = subprocess.run(mcp_pa_command("db", "migrate"), env=env, cwd=scratch, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == f"database: {pg_dsn} (the connection string)"
