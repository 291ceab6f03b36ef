"""Compiles .proto sources into a FileDescriptorSet with protoc as shipped by grpcio-tools."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path, PurePosixPath

import grpc_tools
from google.protobuf import descriptor_pb2

WELL_KNOWN_INCLUDE = str(Path(grpc_tools.__file__).parent / "_proto")
PLATFORM_PROTO_ROOT = Path(__file__).resolve().parent.parent / "proto"


class ProtoCompileError(Exception):
    """The sources did not compile; ``errors`` holds protoc's ``file:line:col: message`` lines."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = errors
        super().__init__("; ".join(errors) or "protoc failed")


def _safe_relative_path(name: str) -> PurePosixPath:
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts or not name.endswith(".proto"):
        raise ProtoCompileError([f"{name}: file names must be relative paths ending in .proto"])
    return path


def compile_protos(
    sources: Mapping[str, str],
    *,
    include_platform_protos: bool = True,
    timeout: float = 30.0,
) -> descriptor_pb2.FileDescriptorSet:
    """Compile ``sources`` (file name -> text) and return a self-contained FileDescriptorSet.

    Imports resolve against the other sources, the platform's own ``proto/`` tree (so
    schemas can use the platform's field options) and the protobuf well-known types.
    The set includes every imported file, so it can be loaded into a fresh pool.
    """
    if not sources:
        raise ProtoCompileError(["no .proto source given"])
    with tempfile.TemporaryDirectory(prefix="protoc-") as workdir:
        root = Path(workdir)
        for name, text in sources.items():
            target = root / _safe_relative_path(name)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        out = root / "descriptor_set.pb"
        includes = [f"-I{root}"]
        if include_platform_protos:
            includes.append(f"-I{PLATFORM_PROTO_ROOT}")
        includes.append(f"-I{WELL_KNOWN_INCLUDE}")
        command = [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            *includes,
            "--include_imports",
            "--include_source_info",
            f"--descriptor_set_out={out}",
            *sorted(sources),
        ]
        try:
            completed = subprocess.run(  # noqa: S603 (fixed argv, no shell)
                command,
                cwd=root,
                capture_output=True,
                text=True,
                timeout=timeout,
                env={**os.environ, "PYTHONWARNINGS": "ignore"},
            )
        except subprocess.TimeoutExpired as exc:
            raise ProtoCompileError([f"protoc did not finish within {timeout:g}s"]) from exc
        if completed.returncode != 0:
            lines = [line.strip() for line in completed.stderr.splitlines() if line.strip()]
            # protoc names files by their path under the temporary root; show the upload's name.
            lines = [line.replace(f"{root}/", "") for line in lines]
            raise ProtoCompileError(lines or [f"protoc exited with status {completed.returncode}"])
        descriptor_set = descriptor_pb2.FileDescriptorSet()
        descriptor_set.ParseFromString(out.read_bytes())
        return descriptor_set


@lru_cache(maxsize=32)
def _compile_cached(sources: tuple[tuple[str, str], ...]) -> bytes:
    return compile_protos(dict(sources)).SerializeToString(deterministic=True)


def compile_protos_serialized(sources: Mapping[str, str]) -> bytes:
    """Like compile_protos, returning the deterministic serialisation; memoised per process.

    Registering the same sources again (every deploy's configuration load) then costs
    no protoc run.
    """
    return _compile_cached(tuple(sorted(sources.items())))
