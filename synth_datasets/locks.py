"""One process at a time per output folder: a lock file beside the folder (filelock, portable).

Two runs of the same recipe at once would otherwise interleave their writes to the dataset folder,
the resumable run's shards or the saved prompts; with the lock the second waits for the first, says
so, and then finds its work done (the `datasets` cache, finished shards).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from pathlib import Path

logger = logging.getLogger(__name__)
_HELD = threading.local()  # lock files this thread holds: taking one again is a no-op, not a deadlock


@contextlib.contextmanager
def folder_lock(folder: Path):
    """Hold a lock file beside `folder` (two processes writing it take turns); says when it waits."""
    from filelock import FileLock, Timeout

    folder = Path(folder).resolve()
    folder.parent.mkdir(parents=True, exist_ok=True)
    path = str(folder.parent / f".{folder.name}.lock")
    held = _HELD.__dict__.setdefault("paths", set())
    if path in held:
        yield
        return
    lock = FileLock(path)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        logger.warning("another run is writing %s: waiting for it to finish", folder)
        lock.acquire()
    held.add(path)
    try:
        yield
    finally:
        held.discard(path)
        lock.release()
