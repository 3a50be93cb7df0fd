"""Hashes of model and LoRA files, in the forms the other tools print.

- full sha256 of a file (A1111 "Model hash" is its first 10 hex digits);
- kohya/AddNet "model hash" of a safetensors file: sha256 of the tensor data only, skipping the
  header, so editing metadata keeps it (A1111's `Lora hashes` use its first 12 hex digits);
- kohya "legacy hash": sha256 of the 64 KiB at offset 1 MiB, first 8 hex digits;
- a directory hash for diffusers folders (a manifest of per-file sha256), cached beside the model
  because hashing multi-GB checkpoints takes a while.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path
from typing import BinaryIO

_BLOCK = 1 << 20
HASH_CACHE_NAME = ".lorastrap-hash.json"
# Files that describe the hash, not the model.
_IGNORED = {HASH_CACHE_NAME}


def _sha256_stream(fh: BinaryIO) -> str:
    digest = hashlib.sha256()
    for block in iter(lambda: fh.read(_BLOCK), b""):
        digest.update(block)
    return digest.hexdigest()


def sha256_file(path: Path) -> str:
    with open(path, "rb") as fh:
        return _sha256_stream(fh)


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def addnet_hash(source: bytes | Path) -> str:
    """sha256 of a safetensors file's tensor data (after the 8-byte length and JSON header)."""
    with (io.BytesIO(source) if isinstance(source, bytes) else open(source, "rb")) as fh:
        header_len = int.from_bytes(fh.read(8), "little")
        fh.seek(8 + header_len)
        return _sha256_stream(fh)


def legacy_hash(source: bytes | Path) -> str:
    with (io.BytesIO(source) if isinstance(source, bytes) else open(source, "rb")) as fh:
        fh.seek(0x100000)
        return hashlib.sha256(fh.read(0x10000)).hexdigest()[:8]


def _stat_key(path: Path) -> list[int]:
    st = path.stat()
    return [st.st_size, st.st_mtime_ns]


def _read_cache(cache: Path) -> dict:
    try:
        return json.loads(cache.read_text())
    except (OSError, ValueError):
        return {}


def _write_cache(cache: Path, data: dict) -> None:
    try:
        tmp = cache.with_name(cache.name + f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
        os.replace(tmp, cache)
    except OSError:  # read-only model folder (e.g. a shared hub cache): just do not cache
        pass


def model_hash(path: Path) -> str:
    """sha256 identifying a model file or diffusers directory, cached beside it.

    A file's hash is its plain sha256 (what A1111 shows). A directory's is the sha256 of a sorted
    manifest of `relative/path sha256` lines. Cached per file by size + mtime, so an unchanged
    model is never rehashed and a changed one is.
    """
    path = Path(path)
    if path.is_file():
        cache = path.with_name(path.name + HASH_CACHE_NAME)
        cached = _read_cache(cache)
        key = _stat_key(path)
        if cached.get("stat") == key and cached.get("sha256"):
            return cached["sha256"]
        digest = sha256_file(path)
        _write_cache(cache, {"stat": key, "sha256": digest})
        return digest
    cache = path / HASH_CACHE_NAME
    cached = _read_cache(cache).get("files", {})
    files: dict[str, list] = {}
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        rel = file.relative_to(path).as_posix()
        if file.name in _IGNORED or rel.startswith(".") or "/." in rel:
            continue
        key = _stat_key(file)
        old = cached.get(rel)
        digest = old[2] if old and old[:2] == key else sha256_file(file)
        files[rel] = [*key, digest]
    manifest = "".join(f"{rel} {entry[2]}\n" for rel, entry in sorted(files.items()))
    digest = sha256_bytes(manifest.encode())
    if files != cached:
        _write_cache(cache, {"files": files, "sha256": digest})
    return digest
