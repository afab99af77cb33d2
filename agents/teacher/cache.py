"""Persistent teacher-call cache: a SQLite file (WAL) that makes a resumed run spend no teacher tokens twice.

Key: sha256 of the canonical JSON of (backend, model, params, messages, sample_index), where params hold the
temperature, max_tokens and, for structured calls, the output mode and the JSON schema. Value: the reply text and its
token counts, and who paid for it: `payer` (the run directory that made the call) and `role` (the agent that asked),
so that a resumed run can count what its killed attempt paid (agents/teacher/accounting.py). Only successful replies
are stored, and each write is committed (and synced) before the reply is
handed back, so a run killed right after a call finds it on resume. Safe across threads (one connection per thread)
and processes (WAL, busy timeout, INSERT OR IGNORE: the first writer wins). By default the file is
`<run_dir>/teacher_cache.sqlite`; `teacher.shared_cache` names one file shared by many runs.
No credentials ever enter a key or a row: the key is built from the rendered messages and parameters only.
"""
from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CACHE_FILE = "teacher_cache.sqlite"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS teacher_calls (
    key TEXT PRIMARY KEY,
    text TEXT NOT NULL,
    tokens_in INTEGER NOT NULL,
    tokens_out INTEGER NOT NULL,
    backend TEXT NOT NULL,
    model TEXT NOT NULL,
    created REAL NOT NULL,
    payer TEXT,
    role TEXT
)
"""
_ADDED_COLUMNS = {"payer": "TEXT", "role": "TEXT"}  # absent from cache files written before they were added


@dataclass(frozen=True)
class PaidRow:
    """A reply this run paid for, as the cache recorded it (in the order the calls were made)."""

    key: str
    role: str
    tokens_in: int
    tokens_out: int
    backend: str
    model: str


def cache_key(backend: str, model: str, params: dict[str, Any], messages: list[dict], sample_index: int) -> str:
    """The sha256 hex digest that identifies one teacher call."""
    blob = json.dumps(
        {"backend": backend, "model": model, "params": params, "messages": messages, "sample_index": sample_index},
        sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str,
    )
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class CachedReply:
    text: str
    tokens_in: int
    tokens_out: int


class TeacherCache:
    """get/put of teacher replies by key in one SQLite file."""

    def __init__(self, path: str | Path, timeout_s: float = 60.0) -> None:
        self.path = Path(path).expanduser()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.timeout_s = timeout_s
        self._local = threading.local()
        self._conns: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._conn().executescript(_SCHEMA)
        self._migrate()

    def _migrate(self) -> None:
        have = {row[1] for row in self._conn().execute("PRAGMA table_info(teacher_calls)")}
        for name, kind in _ADDED_COLUMNS.items():
            if name not in have:
                try:
                    self._conn().execute(f"ALTER TABLE teacher_calls ADD COLUMN {name} {kind}")
                except sqlite3.OperationalError as e:  # another process added it first
                    if "duplicate column" not in str(e):
                        raise

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=self.timeout_s, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute(f"PRAGMA busy_timeout={int(self.timeout_s * 1000)}")
            self._local.conn = conn
            with self._lock:
                self._conns.append(conn)
        return conn

    def get(self, key: str) -> CachedReply | None:
        row = self._conn().execute(
            "SELECT text, tokens_in, tokens_out FROM teacher_calls WHERE key = ?", (key,)).fetchone()
        return CachedReply(row[0], int(row[1]), int(row[2])) if row else None

    def put(self, key: str, text: str, tokens_in: int, tokens_out: int, *, backend: str, model: str,
            payer: str | None = None, role: str | None = None) -> None:
        """Store a reply (the first writer of a key is its payer); returns only after the write is committed."""
        self._conn().execute(
            "INSERT OR IGNORE INTO teacher_calls "
            "(key, text, tokens_in, tokens_out, backend, model, created, payer, role) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (key, text, int(tokens_in), int(tokens_out), backend, model, time.time(), payer, role),
        )

    def put_many(self, rows: list[tuple[str, str, int, int, str | None]], *, backend: str, model: str,
                 payer: str | None = None) -> None:
        """Store several replies, (key, text, tokens_in, tokens_out, role) each, in one transaction: all of them or,
        killed before the commit, none (the n choices of one request, an in-process batch)."""
        conn = self._conn()
        now = time.time()
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany(
                "INSERT OR IGNORE INTO teacher_calls "
                "(key, text, tokens_in, tokens_out, backend, model, created, payer, role) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(k, text, int(tin), int(tout), backend, model, now, payer, role) for k, text, tin, tout, role in rows])
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def paid_by(self, payer: str) -> list[PaidRow]:
        """Every reply `payer` paid for, oldest first (rows written before payers were recorded have none)."""
        rows = self._conn().execute(
            "SELECT key, role, tokens_in, tokens_out, backend, model FROM teacher_calls "
            "WHERE payer = ? AND role IS NOT NULL ORDER BY rowid", (payer,)).fetchall()
        return [PaidRow(r[0], r[1], int(r[2]), int(r[3]), r[4], r[5]) for r in rows]

    def __len__(self) -> int:
        return int(self._conn().execute("SELECT COUNT(*) FROM teacher_calls").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            conns, self._conns = self._conns, []
        for c in conns:
            try:
                c.close()
            except sqlite3.Error:
                pass
        self._local = threading.local()
