"""Durable record of every completed endpoint request, so a killed or re-run job resends nothing.

One SQLite file under ``store_dir`` (outside build/, which Snakemake deletes when a job fails). A
response is committed the moment it arrives, keyed by the sha256 of the full request body: the
endpoint and model, the messages, the sampling settings and the request's own seed. The request
holds no credential (the key travels in a header), so neither does the cache.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from s2l.engine.specs import sha256_json

CACHE_FILE = "requests.sqlite"


def request_key(base_url: str, body: dict[str, Any]) -> str:
    return sha256_json({"base_url": base_url.rstrip("/"), "body": body})


class RequestCache:
    """Responses by request key. Safe for several jobs at once (SQLite's WAL journal, a busy timeout)
    and for the threads of one job (one connection, one lock)."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / CACHE_FILE
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, timeout=60, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, response TEXT NOT NULL, "
                         "created REAL NOT NULL)")
        self._db.commit()

    def get(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute("SELECT response FROM responses WHERE key = ?", (key,)).fetchone()
        return json.loads(row[0]) if row else None

    def put(self, key: str, response: dict[str, Any]) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO responses VALUES (?, ?, ?)",
                             (key, json.dumps(response, sort_keys=True), time.time()))
            self._db.commit()

    def __len__(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]

    def close(self) -> None:
        self._db.close()
