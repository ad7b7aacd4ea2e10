"""A checkpoint's files: whether each safetensors file is whole, and a SHA-256 of the weights
and config that says exactly which model answered (exports record it). No torch here.

The hash reads every byte: hashlib's SHA-256 runs at about 1.1 GB/s on one core of the
development machine, so the 15 MB demo model costs ~15 ms but a 16 GB checkpoint ~15 s.
`load_checkpoint` therefore computes it with `BackgroundHash`, on a thread, while transformers
reads the same files (hashlib lets go of the GIL while it hashes).
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections.abc import Callable
from pathlib import Path

__all__ = ["BackgroundHash", "checkpoint_sha256", "hashed_files", "safetensors_problem"]

logger = logging.getLogger(__name__)

_CHUNK = 8 * 2**20
# safetensors itself refuses headers above this size; checking it here keeps a damaged length
# field from making us read gigabytes as "header".
_MAX_HEADER = 100_000_000


def weight_files(folder: Path) -> list[Path]:
    """The ``*.safetensors`` files in ``folder``, sorted by name."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.name.endswith(".safetensors"))


def hashed_files(model_dir: Path, adapter_dir: Path | None = None) -> list[tuple[str, Path]]:
    """(name in the hash, file) for what decides the answers: config.json and every
    safetensors file, then the adapter's adapter_config.json and safetensors files."""
    files = [("config.json", model_dir / "config.json")]
    files += [(p.name, p) for p in weight_files(model_dir)]
    if adapter_dir is not None:
        files.append(("adapter/adapter_config.json", adapter_dir / "adapter_config.json"))
        files += [(f"adapter/{p.name}", p) for p in weight_files(adapter_dir)]
    return files


def checkpoint_sha256(
    files: list[tuple[str, Path]], cancel: Callable[[], bool] | None = None
) -> str:
    """The hex SHA-256 over each file's name, size and bytes, in the given order (the name and
    size keep file boundaries unambiguous). "" when ``cancel()`` turned True.

    Raises:
        OSError: a file could not be read.
    """
    digest = hashlib.sha256()
    for name, path in files:
        with path.open("rb") as file:
            size = path.stat().st_size
            digest.update(f"{name}\0{size}\0".encode())
            while chunk := file.read(_CHUNK):
                if cancel is not None and cancel():
                    return ""
                digest.update(chunk)
    return digest.hexdigest()


class BackgroundHash:
    """`checkpoint_sha256` on a daemon thread; `result` waits for it, `cancel` stops it (a
    failed load must not keep reading a large checkpoint)."""

    def __init__(self, files: list[tuple[str, Path]]) -> None:
        self._files = files
        self._stop = threading.Event()
        self._digest = ""
        self._thread = threading.Thread(target=self._run, name="birdview-hash", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._digest = checkpoint_sha256(self._files, self._stop.is_set)
        except OSError as exc:  # the load reports unreadable files; the hash is then unknown
            logger.warning("could not hash the checkpoint: %s", exc)

    def result(self) -> str:
        """The hex digest, or "" when a file could not be read."""
        self._thread.join()
        return self._digest

    def cancel(self) -> None:
        self._stop.set()


def safetensors_problem(path: Path) -> str | None:
    """Why ``path`` is not a whole safetensors file, or None when it is. Reads only the
    header: a file cut short (an interrupted copy or download) is the usual damage, and
    safetensors' own error ("incomplete metadata, file not fully covered") names neither the
    file nor the cause.

    Raises:
        OSError: the file could not be read.
    """
    size = path.stat().st_size
    with path.open("rb") as file:
        head = file.read(8)
        length = int.from_bytes(head, "little")
        if len(head) < 8 or length > min(size - 8, _MAX_HEADER):
            return f"{path.name} is cut short or not a safetensors file ({size:,} bytes)"
        header_bytes = file.read(length)
    try:
        header = json.loads(header_bytes)
        ends = [entry["data_offsets"][1] for key, entry in header.items() if key != "__metadata__"]
        expected = 8 + length + max(ends, default=0)
    except (ValueError, TypeError, KeyError, IndexError, AttributeError):
        return f"{path.name} has an unreadable header"
    if size < expected:
        return f"{path.name} is cut short ({size:,} of its {expected:,} bytes)"
    if size > expected:
        return f"{path.name} has {size - expected:,} bytes more than its header describes"
    return None
