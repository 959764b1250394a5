"""Compile protos/authz_service/proto/*.proto into this package with grpcio-tools.

`python -m authz_service.proto.build` rewrites the committed modules; the test suite runs
`generate()` into a temporary directory and fails when the committed code is stale.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PROTO_ROOT = REPO / "protos"
PROTO_DIR = PROTO_ROOT / "authz_service" / "proto"


def _include_dirs() -> list[str]:
    import google.rpc  # googleapis-common-protos ships google/rpc/status.proto beside its modules
    import grpc_tools

    googleapis_root = Path(google.rpc.__path__[0]).parent.parent
    well_known = Path(grpc_tools.__file__).parent / "_proto"
    return [str(PROTO_ROOT), str(well_known), str(googleapis_root)]


def generate(out_dir: Path) -> list[Path]:
    """Generate *_pb2.py, *_pb2.pyi and *_pb2_grpc.py under out_dir/authz_service/proto."""
    from grpc_tools import protoc

    out_dir.mkdir(parents=True, exist_ok=True)
    sources = sorted(str(p.relative_to(PROTO_ROOT)) for p in PROTO_DIR.glob("*.proto"))
    includes = [f"-I{d}" for d in _include_dirs()]
    # Messages for every file; gRPC stubs only where a service is defined (no empty *_grpc.py).
    services = [s for s in sources if re.search(r"^service\s", (PROTO_ROOT / s).read_text(), re.MULTILINE)]
    for args in (
        ["protoc", *includes, f"--python_out={out_dir}", f"--pyi_out={out_dir}", *sources],
        ["protoc", *includes, f"--grpc_python_out={out_dir}", *services],
    ):
        if protoc.main(args) != 0:
            raise RuntimeError(f"protoc failed: {' '.join(args[len(includes) + 1:])}")
    return sorted((out_dir / "authz_service" / "proto").glob("*_pb2*.py*"))


def main() -> int:
    generated = generate(REPO)
    print("\n".join(str(p.relative_to(REPO)) for p in generated))
    return 0


if __name__ == "__main__":
    sys.exit(main())
