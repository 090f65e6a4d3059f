"""Content-addressed store of stage outputs, outside build/ and outside Snakemake's metadata.

An entry is ``<root>/<stage>/<key[:2]>/<key>/``: one file or folder per output role plus the
manifest, filed under the job's **input key** (the hash of the bytes it read, s2l/engine/runner.py). When a
job's input key is already there its outputs are copied back instead of being rebuilt, so reverting
a skill edit, switching a branch back, or an upstream rerun that reproduced its outputs byte for
byte costs no generation or training. ``<root>/<stage>/plans/<plan key>`` names the entry a plan
key was last built into, for ``s2l status``.

Entries are written to a temporary folder, fsynced and renamed into place, so a killed job or two
jobs storing the same key leave one complete entry; every file is checked against its sha256 on
restore, and an entry that fails is discarded with a warning and rebuilt. Prune with
``s2l store prune --older-than DAYS`` or by deleting folders: an entry is only ever read whole.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from s2l.engine.hashing import content_files, content_sha256

MANIFEST = "manifest.json"


def copy_fresh(source: Path, target: Path) -> None:
    """Copy bytes, not timestamps: a restored output must look new to Snakemake."""
    remove(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    if source.is_dir():
        shutil.copytree(source, target, copy_function=shutil.copyfile)
    else:
        shutil.copyfile(source, target)


def remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


def fsync_tree(path: Path) -> None:
    """Flush every file and folder below ``path`` to disk, so a rename publishes complete bytes."""
    for item in content_files(path):
        with open(item, "rb") as stream:
            os.fsync(stream.fileno())
    for folder in sorted({p.parent for p in path.rglob("*")} | {path}):
        descriptor = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


@dataclass(frozen=True)
class Store:
    root: Path

    def entry(self, stage: str, key: str) -> Path:
        return self.root / stage / key[:2] / key

    def plan_alias(self, stage: str, plan_key: str) -> Path:
        return self.root / stage / "plans" / plan_key

    def has(self, stage: str, key: str) -> bool:
        return (self.entry(stage, key) / MANIFEST).is_file()

    def has_plan(self, stage: str, plan_key: str) -> bool:
        """Whether a build planned under ``plan_key`` was stored (for ``s2l status``)."""
        alias = self.plan_alias(stage, plan_key)
        return alias.is_file() and self.has(stage, alias.read_text(encoding="utf-8").strip())

    def save(self, stage: str, key: str, outputs: dict[str, Path], manifest: dict[str, Any],
             replace: bool = False) -> None:
        """File ``outputs`` under ``key``; an existing entry is kept unless ``replace``."""
        entry = self.entry(stage, key)
        if not replace and self.has(stage, key):
            self.remember_plan(stage, manifest["key"], key)
            return
        staging = entry.parent / f".{key}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
        try:
            for role, path in outputs.items():
                copy_fresh(path, staging / role)
            (staging / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
            fsync_tree(staging)
            if entry.exists() and (replace or not self.has(stage, key)):
                retired = entry.with_name(f".{key}.{uuid.uuid4().hex[:8]}.old")
                try:
                    entry.rename(retired)
                except OSError:
                    pass  # another job is replacing it at the same moment
                else:
                    shutil.rmtree(retired, ignore_errors=True)
            try:
                staging.rename(entry)  # atomic: readers never see half an entry
            except OSError:
                pass  # another job stored the same key first: its entry is as good as ours
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        self.remember_plan(stage, manifest["key"], key)

    def remember_plan(self, stage: str, plan_key: str, key: str) -> None:
        """Note that the build planned under ``plan_key`` is stored under input key ``key``."""
        alias = self.plan_alias(stage, plan_key)
        alias.parent.mkdir(parents=True, exist_ok=True)
        temporary = alias.with_name(f".{plan_key}.{uuid.uuid4().hex[:8]}.tmp")
        temporary.write_text(key + "\n", encoding="utf-8")
        temporary.replace(alias)

    def restore(self, stage: str, key: str, outputs: dict[str, Path]) -> bool:
        """Copy an entry's outputs into place, each checked against its recorded sha256.

        False (and the entry discarded, with a warning) when the entry is missing a file or any
        byte differs: the caller then builds the outputs afresh.
        """
        entry = self.entry(stage, key)
        try:
            recorded = json.loads((entry / MANIFEST).read_text(encoding="utf-8"))["outputs"]
            for role, path in outputs.items():
                copy_fresh(entry / role, path)
                if content_sha256(path) != recorded[role]["sha256"]:
                    raise ValueError(f"{role} does not match its sha256")
        except (OSError, ValueError, KeyError) as error:
            print(f"warning: store entry {entry} is damaged ({error}); discarding it and rebuilding",
                  file=sys.stderr)
            for path in outputs.values():
                remove(path)
            shutil.rmtree(entry, ignore_errors=True)
            return False
        os.utime(entry)  # last use, for pruning
        return True

    def prune(self, older_than_days: float) -> list[Path]:
        """Delete entries not stored or restored for ``older_than_days``; return them."""
        cutoff = time.time() - older_than_days * 86400
        removed = []
        for entry in sorted(self.root.glob("*/??/*")):
            if entry.is_dir() and entry.stat().st_mtime < cutoff:
                shutil.rmtree(entry)
                removed.append(entry)
        return removed
