"""Content-addressed store of stage outputs, outside build/ and outside Snakemake's metadata.

An entry is ``<root>/<stage>/<key[:2]>/<key>/``: one file or folder per output role plus the
manifest. When a stage's content key is already in the store its outputs are copied back instead of
being rebuilt, so reverting a skill edit, or switching a branch back, costs no generation or
training. Prune it with ``s2l cache prune --older-than DAYS`` or by deleting folders: an entry is
self-contained and only ever read whole.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MANIFEST = "manifest.json"


def output_sha256(path: Path) -> str:
    """sha256 of a file, or of a folder's relative paths and file contents."""
    from s2l.model import file_sha256

    if path.is_file():
        return file_sha256(path)
    digest = hashlib.sha256()
    for item in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(item.relative_to(path).as_posix().encode() + b"\0" + file_sha256(item).encode())
    return digest.hexdigest()


def copy_fresh(source: Path, target: Path) -> None:
    """Copy bytes, not timestamps: a restored output must look new to Snakemake."""
    if target.is_dir():
        shutil.rmtree(target)
    elif target.exists():
        target.unlink()
    target.parent.mkdir(parents=True, exist_ok=True)
    if source.is_dir():
        shutil.copytree(source, target, copy_function=shutil.copyfile)
    else:
        shutil.copyfile(source, target)


@dataclass(frozen=True)
class Store:
    root: Path

    def entry(self, stage: str, key: str) -> Path:
        return self.root / stage / key[:2] / key

    def has(self, stage: str, key: str) -> bool:
        return (self.entry(stage, key) / MANIFEST).is_file()

    def save(self, stage: str, key: str, outputs: dict[str, Path], manifest: dict[str, Any]) -> None:
        entry = self.entry(stage, key)
        if entry.exists():
            return
        staging = entry.with_name(f".{key}.{os.getpid()}.tmp")
        for role, path in outputs.items():
            copy_fresh(path, staging / role)
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        try:
            staging.rename(entry)  # atomic: readers never see half an entry
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)  # another job stored the same key first

    def restore(self, stage: str, key: str, outputs: dict[str, Path]) -> dict[str, Any]:
        entry = self.entry(stage, key)
        for role, path in outputs.items():
            copy_fresh(entry / role, path)
        os.utime(entry)  # last use, for pruning
        return json.loads((entry / MANIFEST).read_text(encoding="utf-8"))

    def prune(self, older_than_days: float) -> list[Path]:
        """Delete entries not stored or restored for ``older_than_days``; return them."""
        cutoff = time.time() - older_than_days * 86400
        removed = []
        for entry in sorted(self.root.glob("*/*/*")):
            if entry.is_dir() and entry.stat().st_mtime < cutoff:
                shutil.rmtree(entry)
                removed.append(entry)
        return removed
