"""Atomic file writes: a reader sees the old file or the complete new one, never a partial one.

Every writer in the package goes through `atomic_path`: the content is written to a
temporary file in the destination's folder (same file system), then renamed over the
destination with `os.replace`. On any error the temporary file is removed.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from typing import Any, Iterator


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[str]:
    """Yields a temporary path next to `path` (same extension); renames it onto `path` on success.

    For writers that take a file name, e.g. `model.save(tmp)`.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".tmp-{os.path.basename(path)}-", suffix=os.path.splitext(path)[1], dir=folder)
    os.close(fd)
    try:
        yield tmp
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600 files; give the usual permissions
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_bytes(path: str | os.PathLike, data: bytes) -> str:
    """Writes `data` to `path` atomically; returns the path."""
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
    return os.fspath(path)


def write_json(path: str | os.PathLike, value: Any) -> str:
    """Writes `value` as indented, key-sorted JSON to `path` atomically; returns the path."""
    return write_bytes(path, (json.dumps(value, indent=2, sort_keys=True) + "\n").encode("utf-8"))
