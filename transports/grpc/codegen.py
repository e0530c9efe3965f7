"""Regenerate the committed protobuf and gRPC stubs from `coordinator.proto` and `health.proto`.

Run `python -m transports.grpc.codegen` after editing a `.proto`; the unit test
`tests/unit/test_grpc_stubs.py` fails while the committed stubs are stale. Needs
grpcio-tools (a test dependency), never imported at run time.
"""

from __future__ import annotations

import sys
from pathlib import Path

__all__ = ["PROTOS", "generate", "main"]

ROOT = Path(__file__).resolve().parents[2]
PROTOS = ("transports/grpc/coordinator.proto", "transports/grpc/health.proto")


def generate(out_dir: Path) -> list[Path]:
    """Write `*_pb2.py`, `*_pb2.pyi` and `*_pb2_grpc.py` for every proto under `out_dir`.

    The proto paths are given relative to the repository root, so the stubs import
    each other as `transports.grpc.<name>_pb2`.

    Raises:
        RuntimeError: protoc reported an error.
    """
    from grpc_tools import protoc

    out_dir.mkdir(parents=True, exist_ok=True)
    include = str(Path(protoc.__file__).parent / "_proto")
    args = ["protoc", f"-I{ROOT}", f"-I{include}", f"--python_out={out_dir}", f"--pyi_out={out_dir}",
            f"--grpc_python_out={out_dir}", *[str(ROOT / p) for p in PROTOS]]
    if protoc.main(args) != 0:
        raise RuntimeError(f"protoc failed: {' '.join(args)}")
    return sorted((out_dir / "transports" / "grpc").glob("*_pb2*.py*"))


def main() -> int:
    import shutil
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        for path in generate(Path(tmp)):
            shutil.copyfile(path, ROOT / "transports" / "grpc" / path.name)
            print(f"wrote transports/grpc/{path.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
