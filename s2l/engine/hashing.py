"""Content hashes of files and folders, and a stat stamp that says when a hash must be redone.

Hashing a multi-gigabyte model on every parse or every job would dominate a build, so a hash is
remembered with a stamp (each file's relative path, size and mtime) and recomputed only when the
stamp changes: an edit always changes size or mtime, a touch only costs one re-hash.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

Stamp = list[list[Any]]


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def content_files(path: Path) -> list[Path]:
    """The files whose bytes make up ``path``: itself, or a folder's files below it, hidden ones left out."""
    path = Path(path)
    if path.is_file():
        return [path]
    return sorted(p for p in path.rglob("*")
                  if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts))


def content_sha256(path: Path) -> str:
    """sha256 of a file, or of a folder's relative paths and file contents."""
    path = Path(path)
    if path.is_file():
        return file_sha256(path)
    digest = hashlib.sha256()
    for item in content_files(path):
        digest.update(item.relative_to(path).as_posix().encode() + b"\0" + file_sha256(item).encode())
    return digest.hexdigest()


def stat_stamp(path: Path) -> Stamp:
    path = Path(path)
    root = path if path.is_dir() else path.parent
    return [[p.relative_to(root).as_posix(), p.stat().st_size, p.stat().st_mtime_ns] for p in content_files(path)]


def remembered(path: Path, memo: Path, compute: Callable[[Path], Any]) -> Any:
    """``compute(path)`` (a JSON value), recomputed only when ``path``'s stat stamp differs from the
    one in ``memo``."""
    stamp = [[str(Path(path).resolve())], *stat_stamp(path)]
    if memo.is_file():
        memory = json.loads(memo.read_text(encoding="utf-8"))
        if memory.get("stamp") == stamp and "value" in memory:
            return memory["value"]
    value = compute(path)
    memo.parent.mkdir(parents=True, exist_ok=True)
    memo.write_text(json.dumps({"stamp": stamp, "value": value}) + "\n", encoding="utf-8")
    return value


def remembered_sha256(path: Path, memo: Path) -> str:
    """``content_sha256(path)``, recomputed only when its stat stamp differs from the one in ``memo``."""
    return remembered(path, memo, content_sha256)
