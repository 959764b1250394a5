"""`python -m bench.profile`: py-spy profile of our authz service's cached-token Check under h2load.

Starts one authz worker, repeats one JWT (or API key) Check with h2load for a few seconds
while `py-spy record` samples the worker, and writes a flame graph (profile.svg) and the
functions with the most samples, own and inclusive (profile.txt), under bench/results/.
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import shutil
import subprocess
import sys
from pathlib import Path

from bench.__main__ import RESULTS, new_bench
from bench.direct import CLIENTS, STREAMS
from bench.load import GRPC_CONTENT_HEADERS, BenchError, H2Load, grpc_frame, require_tools
from bench.stack import Stack, ports
from bench.traffic import CHECK_METHOD, api_key, bearer, check_request, require_allowed
from fakes.providers import FakeProviders

TOP = 25


def summarize(raw: Path) -> str:
    """Top functions by own samples and by inclusive samples, from py-spy's raw (collapsed) output."""
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        total += int(count)
        own[frames[-1]] += int(count)
        for frame in set(frames):
            inclusive[frame] += int(count)
    lines = [f"{total} samples", "", "own:"]
    lines += [f"  {100 * n / total:5.1f}%  {name}" for name, n in own.most_common(TOP)]
    lines += ["", "inclusive:"]
    lines += [f"  {100 * n / total:5.1f}%  {name}" for name, n in inclusive.most_common(TOP)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--credential", choices=("jwt", "apikey"), default="jwt")
    args = parser.parse_args(argv)
    try:
        require_tools(("h2load",))
        if shutil.which("py-spy", path=str(Path(sys.executable).parent)) is None and shutil.which("py-spy") is None:
            raise BenchError("py-spy is needed: .venv/bin/pip install py-spy")
        out = RESULTS / (dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ") + "-profile")
        (out / "h2load").mkdir(parents=True)
        with FakeProviders() as providers, Stack(out / "logs") as stack:
            bench = new_bench(out, False, providers)
            (port,) = ports(1)
            authz = stack.authz("authz", port, env=bench.authz_env())
            headers = bearer(bench.token) if args.credential == "jwt" else api_key(bench.api_key)
            body = check_request(headers)
            require_allowed(authz.target, body, args.credential)
            (out / "body.bin").write_bytes(grpc_frame(body))
            spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or "py-spy"
            recorders = [
                subprocess.Popen([spy, "record", "--pid", str(authz.proc.pid), "--duration", str(int(args.seconds)),
                                  "--rate", "200", "--format", fmt, "--output", str(out / name), "--nonblocking"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                for fmt, name in (("flamegraph", "profile.svg"), ("raw", "profile.raw"))
            ]
            load = H2Load(f"http://127.0.0.1:{port}{CHECK_METHOD}", GRPC_CONTENT_HEADERS, out / "body.bin",
                          clients=CLIENTS, streams=STREAMS, duration=args.seconds + 2, warm_up=0)
            measured = bench.h2load(load)
            for recorder in recorders:
                recorder.wait(timeout=60)
        text = f"{measured.rps:.0f} req/s under py-spy\n" + summarize(out / "profile.raw")
        (out / "profile.txt").write_text(text + "\n")
        print(text)
        print(f"results: {out}")
    except BenchError as exc:
        print(f"bench.profile: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
