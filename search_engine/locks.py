"""The writer lock of an index: one process writes at a time, queries never wait for it.

An SQLite catalog lives in the index folder, so a lock file there (``index.lock``, filelock)
serves. A PostgreSQL catalog may be shared by processes on several machines, where a lock file
on a network filesystem is not to be trusted: the lock is then a PostgreSQL session advisory lock
(``pg_try_advisory_lock``), held on a connection of its own for as long as the writer holds it.
The server drops it when that connection ends, so a writer that dies (kill -9, a lost machine)
leaves no stale lock behind.

Both locks have filelock's interface as :func:`~search_engine.engine._holding` uses it:
``acquire(timeout=0)`` raising :class:`filelock.Timeout`, ``release()``, ``lock_file`` (what to
name in a message), re-entrant within a process.
"""

from __future__ import annotations

import threading
import zlib
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.engine import Connection, Engine

#: advisory lock key of audio2vec's writer (64-bit, per database; a catalog is one database)
WRITER_KEY = zlib.crc32(b"audio2vec index writer")


class AdvisoryLock:
    """A PostgreSQL session advisory lock, re-entrant like :class:`filelock.FileLock`."""

    def __init__(self, engine: Engine, key: int = WRITER_KEY):
        self.engine, self.key = engine, int(key)
        self._conn: Connection | None = None
        self._count = 0
        self._mutex = threading.RLock()

    @property
    def lock_file(self) -> str:
        url = self.engine.url
        return f"the PostgreSQL advisory lock {self.key} of database {url.database} on {url.host}:{url.port or 5432}"

    @property
    def is_locked(self) -> bool:
        return self._count > 0

    def acquire(self, timeout: float = -1) -> "AdvisoryLock":
        """Take the lock; ``timeout`` 0: at once or :class:`filelock.Timeout` (the only use here;
        any other value waits until it is free)."""
        from filelock import Timeout

        with self._mutex:
            if self._count:
                self._count += 1
                return self
            conn = self.engine.connect()
            try:
                if timeout == 0:
                    got = conn.execute(select(func.pg_try_advisory_lock(self.key))).scalar()
                else:
                    conn.execute(select(func.pg_advisory_lock(self.key)))
                    got = True
                conn.commit()  # the lock is the session's, not the transaction's
            except BaseException:
                conn.close()
                raise
            if not got:
                conn.close()
                raise Timeout(self.lock_file)
            self._conn, self._count = conn, 1
            return self

    def release(self) -> None:
        with self._mutex:
            if not self._count:
                return
            self._count -= 1
            if self._count:
                return
            conn, self._conn = self._conn, None
            try:
                conn.execute(select(func.pg_advisory_unlock(self.key)))
                conn.commit()
            finally:
                conn.close()


def writer_lock(catalog, folder: Path):
    """The writer lock of an index: :class:`AdvisoryLock` for a PostgreSQL catalog, else the lock
    file ``folder/index.lock``."""
    if catalog.engine.dialect.name == "postgresql":
        return AdvisoryLock(catalog.engine)
    from filelock import FileLock

    return FileLock(folder / "index.lock")
