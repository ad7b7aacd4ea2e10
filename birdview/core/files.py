"""Writing files so that a crash, a kill or a full disk leaves either the old file or the new
one, never half of each: sessions and exports both write this way."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterable
from pathlib import Path

__all__ = ["write_atomic"]


def write_atomic(
    path: str | os.PathLike,
    data: bytes | str | Iterable[bytes | str],
    *,
    mode: int = 0o600,
) -> None:
    """Replace ``path`` with ``data`` so that a crash leaves either the old or the new file.

    ``data`` may also be an iterable of chunks (a generator), written as it is consumed, so
    a large file (a 300 MB training list) never sits in memory whole; str is written as UTF-8.

    Writes a temporary file in the same folder, flushes and fsyncs it, renames it over
    ``path`` and (on POSIX) fsyncs the folder so the rename itself is durable. The file gets
    ``mode`` less the umask, as `open` does: private (0600) by default, since sessions hold
    patient data; exports pass 0o666 to get the user's normal permissions (0644 usually).
    """
    path = Path(path)
    chunks = [data] if isinstance(data, str | bytes | bytearray | memoryview) else data
    folder = path.parent
    fd, tmp_name = _create_temp(folder, path.name, mode)
    try:
        with os.fdopen(fd, "wb") as file:
            for chunk in chunks:
                file.write(chunk.encode("utf-8") if isinstance(chunk, str) else chunk)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        try:
            os.unlink(tmp_name)
        except OSError:
            pass
        raise
    _fsync_dir(folder)


def _create_temp(folder: Path, name: str, mode: int) -> tuple[int, str]:
    """A new, exclusive temporary file next to ``name``, created with ``mode`` (the kernel
    applies the umask; `tempfile.mkstemp` would always make it 0600)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    flags |= getattr(os, "O_NOFOLLOW", 0)
    for _ in range(100):
        tmp_name = os.path.join(folder, f".{name}.{secrets.token_hex(6)}.tmp")
        try:
            return os.open(tmp_name, flags, mode), tmp_name
        except FileExistsError:
            continue
    raise FileExistsError(f"Unable to create a temporary file for {name!r} in its folder")


def _fsync_dir(folder: Path) -> None:
    if os.name != "posix":
        return
    try:
        dir_fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass  # some file systems refuse fsync on folders; the rename is done anyway
    finally:
        os.close(dir_fd)
