"""Regenerate the Python stubs from ``cri_api/runtime/v1/api.proto`` and the NRI protos in ``cri_api/nri/proto``.

Run from anywhere with the pinned ``grpcio-tools`` (``pip install -e .[dev]``)::

    python -m cri_api.generate            # rewrite the committed stubs
    python -m cri_api.generate --out DIR  # write them under DIR instead (used by the freshness test)
"""

from __future__ import annotations

import argparse
import re
import sys
from importlib import metadata
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
PROTO = Path("cri_api/runtime/v1/api.proto")
# NRI travels over ttrpc, not gRPC: its protos get message stubs only.
MESSAGE_ONLY_PROTOS = (Path("cri_api/nri/proto/ttrpc.proto"), Path("cri_api/nri/proto/nri.proto"))


def pinned_tools_version() -> str:
    """The grpcio-tools version pyproject.toml pins for generating the stubs."""
    found = re.search(r'"grpcio-tools==([^"]+)"', (REPO_ROOT / "pyproject.toml").read_text())
    if found is None:
        raise SystemExit("pyproject.toml pins no grpcio-tools version")
    return found.group(1)


def check_tools_version() -> None:
    """Refuse to generate with another grpcio-tools than the pinned one: its stubs would differ."""
    pinned = pinned_tools_version()
    try:
        installed = metadata.version("grpcio-tools")
    except metadata.PackageNotFoundError:
        raise SystemExit(f"grpcio-tools is not installed: pip install grpcio-tools=={pinned}") from None
    if installed != pinned:
        raise SystemExit(f"grpcio-tools {installed} is installed but {pinned} is pinned: "
                         f"pip install grpcio-tools=={pinned}")


def generate(out_dir: Path) -> None:
    """Write api_pb2.py, api_pb2.pyi and api_pb2_grpc.py, and the NRI protos' *_pb2.py and *_pb2.pyi, under
    ``out_dir``."""
    check_tools_version()
    out_dir.mkdir(parents=True, exist_ok=True)
    run_protoc(out_dir, [PROTO], grpc=True)
    run_protoc(out_dir, list(MESSAGE_ONLY_PROTOS), grpc=False)


def run_protoc(out_dir: Path, protos: list[Path], grpc: bool) -> None:
    from grpc_tools import protoc  # only a dev dependency

    # The proto path relative to -I becomes the Python import path of the stubs.
    args = ["protoc", f"-I{REPO_ROOT}", f"--python_out={out_dir}", f"--pyi_out={out_dir}"]
    if grpc:
        args.append(f"--grpc_python_out={out_dir}")
    if protoc.main([*args, *(str(proto) for proto in protos)]) != 0:
        raise SystemExit("protoc failed")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO_ROOT, help="root to write under")
    generate(parser.parse_args(argv).out)


if __name__ == "__main__":
    main(sys.argv[1:])
