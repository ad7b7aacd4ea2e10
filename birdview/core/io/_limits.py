"""The bounds every reader checks before it reads: what it opens, and what it allocates.

A file states its own sizes (frames, rows, pages, member sizes), and a damaged or hostile one
can state anything. Readers check what a file declares against what the file holds and against
the memory available *now* (not the computer's total) before they allocate anything in
proportion to it, and they open regular files only: a named pipe or a device would block or
never end.
"""

from __future__ import annotations

import os
import stat

from birdview.core.errors import VolumeReadError

# Allocations this small are not checked: a folder scan asks for every file.
_ALWAYS_FITS_BYTES = 64 * 1024**2

_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a named pipe"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
)


def check_regular_file(path: str) -> None:
    """Raise `VolumeReadError` unless ``path`` is an existing regular file (links followed).

    Raises:
        VolumeReadError: the path does not exist, or is a folder, pipe, socket or device.
    """
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError as exc:
        raise VolumeReadError(path, "the file does not exist") from exc
    except OSError as exc:
        raise VolumeReadError(path, f"it could not be read ({exc.strerror})") from exc
    if not stat.S_ISREG(mode):
        raise VolumeReadError(path, f"it is not a regular file (it is {kind_of(mode)})")


def kind_of(mode: int) -> str:
    """What a non-regular file is, in words ("a named pipe")."""
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def open_regular(path: str):
    """Open ``path`` for reading in binary, refusing anything but a regular file.

    Opening a named pipe for reading blocks until something writes to it, so the file is
    opened without blocking and checked before any read.

    Raises:
        OSError: the file cannot be opened, or is not a regular file (``errno`` unset).
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    descriptor = os.open(path, flags)
    try:
        mode = os.fstat(descriptor).st_mode
        if not stat.S_ISREG(mode):
            raise OSError(f"it is not a regular file (it is {kind_of(mode)})")
        return os.fdopen(descriptor, "rb")
    except BaseException:
        os.close(descriptor)
        raise


def available_memory_bytes() -> int | None:
    """Memory this process can still allocate, or None where the platform does not say.

    The least of: the system's available memory (MemAvailable, which counts reclaimable
    caches), the headroom under a cgroup limit (containers), and the headroom under this
    process's address-space limit (``ulimit -v``).
    """
    known = [
        value
        for value in (_system_available(), _cgroup_headroom(), _address_space_headroom())
        if value is not None
    ]
    return max(0, min(known)) if known else None


def check_fits(path: str, needed_bytes: int, what: str) -> None:
    """Raise `VolumeReadError` unless ``needed_bytes`` fit in the memory available now.

    ``what`` names what the bytes are for, as the subject of the message ("its 3000 pages of
    4096×4096 pixels").

    Raises:
        VolumeReadError: the allocation would not fit.
    """
    if needed_bytes <= _ALWAYS_FITS_BYTES:
        return
    available = available_memory_bytes()
    if available is not None and needed_bytes > available:
        raise VolumeReadError(
            path,
            f"{what} would need {format_bytes(needed_bytes)} of memory "
            f"but only {format_bytes(available)} is available",
        )


def format_bytes(count: int | float) -> str:
    """``count`` bytes in the largest binary unit that keeps a number ≥ 1 ("1.5 GiB")."""
    if count < 1024:
        return f"{int(count)} bytes"
    for unit in ("KiB", "MiB", "GiB", "TiB", "PiB"):
        count /= 1024
        if count < 1024 or unit == "PiB":
            return f"{count:.1f} {unit}"
    raise AssertionError("unreachable")


# -- where the numbers come from -------------------------------------------------------------


def _system_available() -> int | None:
    try:
        with open("/proc/meminfo", "rb") as meminfo:
            for line in meminfo:
                if line.startswith(b"MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    # Free pages (less than could be reclaimed: on the safe side); where the platform does not
    # count them (macOS), the total, which at least refuses what could never fit.
    for pages in ("SC_AVPHYS_PAGES", "SC_PHYS_PAGES"):
        try:
            return os.sysconf(pages) * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            continue
    return None


def _cgroup_headroom() -> int | None:
    """cgroup v2 seen from inside the container: limit minus what is in use."""
    try:
        with open("/sys/fs/cgroup/memory.max", "rb") as limit_file:
            limit = limit_file.read().strip()
        if limit == b"max":
            return None
        with open("/sys/fs/cgroup/memory.current", "rb") as current_file:
            return int(limit) - int(current_file.read().strip())
    except (OSError, ValueError):
        return None


def _address_space_headroom() -> int | None:
    try:
        import resource
    except ImportError:  # Windows
        return None
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY:
        return None
    return soft - _virtual_size()


def _virtual_size() -> int:
    try:
        with open("/proc/self/status", "rb") as status:
            for line in status:
                if line.startswith(b"VmSize:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0
