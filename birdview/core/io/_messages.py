"""Wording why a file could not be read: the reason part of a `VolumeReadError`.

Library exceptions become short causes: one line, no object reprs, and no quoted header values
where those could be patient data.
"""

from __future__ import annotations

import re
import zlib

from pydicom.errors import InvalidDicomError

_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")
# "<_io.BytesIO object at 0x7f…>": an object's repr tells the user nothing.
_OBJECT_REPR = re.compile(r"<[\w.]+ object at 0x[0-9a-fA-F]+>")
_MAX_CHARS = 200


# pydicom's wrapper around its plugins' own messages, which say what is wrong.
_PLUGINS_FAILED = "Unable to decode as exceptions were raised by all available plugins:"


def summary(exc: BaseException, *, quoted: bool = True) -> str:
    """The exception as "Type: message" on one line, at most 200 characters, no object reprs.

    ``quoted=False`` masks quoted text, for messages that may echo header values (patient data).
    pydicom's "all plugins failed" wrapper gives way to the plugin's message ("pylibjpeg: …").
    """
    text = " ".join(str(exc).split())
    text = _OBJECT_REPR.sub("the data", text)
    if not quoted:
        text = _QUOTED.sub("'…'", text)
    if text.startswith(_PLUGINS_FAILED):
        return _cut(text[len(_PLUGINS_FAILED) :].strip())
    text = _cut(text)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _cut(text: str) -> str:
    return text[:_MAX_CHARS] + ("…" if len(text) > _MAX_CHARS else "")


def header_reason(exc: BaseException) -> str:
    """Say why a header could not be read, without echoing header values (they may be PHI)."""
    if isinstance(exc, InvalidDicomError):
        return "it is not a DICOM file"
    if isinstance(exc, FileNotFoundError):
        return "the file does not exist"
    if isinstance(exc, PermissionError):
        return "it could not be opened (permission denied)"
    if isinstance(exc, OSError) and exc.errno is not None:
        return f"it could not be read ({exc.strerror or type(exc).__name__})"
    if isinstance(exc, OSError) and str(exc).startswith("No tag to read"):
        # pydicom, when an item or sequence runs past the end of the file.
        return "its header is damaged (a sequence runs past the end of the file)"
    if isinstance(exc, zlib.error):
        return f"its deflated data is damaged ({summary(exc)})"
    if isinstance(exc, MemoryError):
        return "it declares an element too large to read (the file is probably damaged)"
    if isinstance(exc, EOFError):
        return "the file is truncated (it ends inside its header)"
    return f"its header is damaged ({summary(exc, quoted=False)})"


def pixel_reason(exc: BaseException) -> str:
    """Say why pixel data could not be decoded; decoder messages carry no header values."""
    if isinstance(exc, MemoryError):
        return "there is not enough memory to decode its pixel data"
    if isinstance(exc, (OSError, InvalidDicomError)):
        return header_reason(exc)
    if isinstance(exc, EOFError):
        return "the file is truncated (it ends inside its pixel data)"
    return f"its pixel data could not be decoded ({summary(exc)})"
