"""`python -m bench [--quick] [--parts 1,2,3,4,5,6,7] [--results-dir DIR]`: run the bench and print the report table.

`make bench` runs every part (about 45 minutes on two cores, most of it part 7's 5,000 tenant
schemas); `--parts 1,2,3,4` is the five-minute front-door and MCP-path subset; `--quick` runs
part 1 only with 1 s measurements (the smoke test uses it to prove the harness works).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import secrets
import shutil
import sys
import time
from pathlib import Path

from bench import app_workers, data_scale, direct, front_door, mcp_path, memory, report, semantic, tenants
from bench.context import AUDIENCE, Bench
from bench.load import BenchError, require_tools
from bench.stack import Stack, ports
from bench.traffic import Ed25519Signer, rs256_tokens
from fakes.providers import FakeProviders
from mcp_pa.core.contract import API_KEY_PREFIX
from mcp_pa.up.certs import ensure_dev_certs

RESULTS = Path(__file__).resolve().parent / "results"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="part 1 only, 1 s measurements (smoke test)")
    parser.add_argument("--parts", default=None,
                        help="comma-separated parts to run (default all: 1 direct, 2 Envoy, 3 MCP path and workers, 4 memory, "
                             "5 data scale, 6 semantic search, 7 tenant schemas; --quick: 1)")
    parser.add_argument("--results-dir", type=Path, default=RESULTS, help="where the <timestamp>/ folder goes")
    args = parser.parse_args(argv)
    raw = args.parts or ("1" if args.quick else "1,2,3,4,5,6,7")
    try:
        args.parts = {int(p) for p in raw.split(",") if p.strip()}
    except ValueError:
        parser.error(f"--parts must be numbers 1-7, got {raw!r}")
    if not args.parts or not args.parts <= {1, 2, 3, 4, 5, 6, 7}:
        parser.error(f"--parts must be a subset of 1,2,3,4,5,6,7, got {raw!r}")
    return args


def new_bench(out: Path, quick: bool, providers: FakeProviders) -> Bench:
    """Issuers on the fake provider server, a dev certificate, a fresh API key and the repeated token."""
    rs_issuer = providers.issuer("/rs")
    return Bench(out=out, quick=quick, providers=providers, rs_issuer=rs_issuer,
                 ed_signer=Ed25519Signer(providers.issuer("/ed")), certs=ensure_dev_certs(out / "tls"),
                 api_key=API_KEY_PREFIX + secrets.token_urlsafe(32),
                 token=rs256_tokens(rs_issuer, AUDIENCE, 1, start=999_999)[0])


def run(args: argparse.Namespace, command: str) -> Path:
    out = args.results_dir / dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    (out / "h2load").mkdir(parents=True)
    load_at_start = os.getloadavg()
    with FakeProviders() as providers, Stack(out / "logs") as stack:
        bench = new_bench(out, args.quick, providers)
        floor_port, floor_uvloop_port, one_port, two_port = ports(4)
        started = time.monotonic()
        floor = stack.floor(floor_port)
        one = stack.authz("authz-1w", one_port, env=bench.authz_env())
        if args.parts & {1, 2}:
            two = stack.authz("authz-2w", two_port, workers=2, env=bench.authz_env())
        if 1 in args.parts:
            floor_uvloop = stack.floor(floor_uvloop_port, uvloop=True)
            direct.run(bench, (floor_port, floor.pid), (floor_uvloop_port, floor_uvloop.pid), one, two)
            print(f"part 1 done ({time.monotonic() - started:.0f} s)", file=sys.stderr)
        if 2 in args.parts:
            front_door.run(bench, stack, floor_port, one, two)
            print(f"part 2 done ({time.monotonic() - started:.0f} s)", file=sys.stderr)
        if 3 in args.parts:
            mcp_path.run(bench, stack, one)
            app_workers.run(bench, stack)
            print(f"part 3 done ({time.monotonic() - started:.0f} s)", file=sys.stderr)
        if 4 in args.parts:
            memory.run(bench, stack)
            print(f"part 4 done ({time.monotonic() - started:.0f} s)", file=sys.stderr)
        if 5 in args.parts:
            data_scale.add_rows(bench)
            print(f"part 5 done ({time.monotonic() - started:.0f} s)", file=sys.stderr)
        if 6 in args.parts:
            semantic.add_rows(bench)
            print(f"part 6 done ({time.monotonic() - started:.0f} s)", file=sys.stderr)
        if 7 in args.parts:
            tenants.add_rows(bench)
            print(f"part 7 done ({time.monotonic() - started:.0f} s)", file=sys.stderr)
        print(report.write(bench.rows, out, command, load_at_start))
    # The database was scratch for parts 3 and 4: stopped with the stack, its files go (tens of MB).
    shutil.rmtree(out / "pgdata", ignore_errors=True)
    return out


def size_mb(path: Path) -> float:
    """Megabytes of the files under path."""
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    command = "python -m bench " + " ".join(sys.argv[1:] if argv is None else argv)
    try:
        require_tools()
        out = run(args, command.strip())
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 1
    print(f"results: {out} ({size_mb(out):.1f} MB written)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
