"""Reading JSON from files that may be large, broken or hostile.

`iter_json_list` reads a large JSON list one element at a time (`json.JSONDecoder.raw_decode`
over a window of the file that is refilled as it goes), so a 300 MB file never sits in memory
whole. `read_json` reads a small JSON file whole. `open_text` opens a UTF-8 text file.

All three turn what Python would raise as a traceback (a folder given as the file, bytes that
are not UTF-8, nesting deeper than the parser's recursion limit) into a `FileNotFoundError` or
`ValueError` whose message names the file and the cause.

Why not ijson: on a 48 MB Med-GRIT-shaped list its C backend (yajl2_c) yields the items in
0.27 s against 0.72 s here, but a list nested 100 000 deep did not come back within 60 s, a
JSON object reads as an empty list, one item may grow to the size of the file, and its errors
name no item. Guarding those needs ijson's event API, whose bare event loop in Python (counting
depth, building nothing) already takes 0.85 s on the same file. Loading a 270k-item list is not
the slow part of a run, so the standard library's C decoder stays.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

__all__ = ["MAX_DEPTH", "MAX_ITEM_CHARS", "iter_json_list", "open_text", "read_json", "too_deep"]

_CHUNK_CHARS = 1 << 20
_WHITESPACE_RE = re.compile(r"\s*")
# Med-GRIT items nest 4 deep; 64 leaves room for any sane record while keeping str() and
# repr() of an item (which recurse) far from Python's recursion limit.
MAX_DEPTH = 64
# An item is a few kB. A bound keeps one endless item from filling memory, and from being
# re-parsed from its start at every refill (quadratic time).
MAX_ITEM_CHARS = 1 << 24


def open_text(path: str | os.PathLike) -> IO[str]:
    """``path`` opened for reading UTF-8 text.

    Raises:
        FileNotFoundError: there is no such file, or it is a folder.
    """
    if Path(path).is_dir():
        raise FileNotFoundError(f"Unable to read '{path}' as it is a folder, not a file")
    try:
        return open(path, encoding="utf-8")
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"Unable to read '{path}' as it does not exist") from exc


def read_json(path: str | os.PathLike, what: str = "") -> Any:
    """The JSON value in the (small) file ``path``; ``what`` names it in messages ("the data
    card").

    Raises:
        FileNotFoundError: there is no such file, or it is a folder.
        ValueError: the file is not UTF-8 JSON, or it nests too deeply.
    """
    name = f"{what} '{path}'" if what else f"'{path}'"
    with open_text(path) as stream:
        try:
            text = stream.read()
        except UnicodeDecodeError as exc:
            raise ValueError(_not_utf8(name, exc)) from exc
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(
            f"Unable to read {name} as it is not JSON (character {exc.pos}: {exc.msg})"
        ) from exc
    except RecursionError as exc:
        raise ValueError(_too_deep(name, "it")) from exc
    if too_deep(value):
        raise ValueError(_too_deep(name, "it"))
    return value


def iter_json_list(path: str | os.PathLike) -> Iterator[Any]:
    """The elements of the JSON list in ``path``, one at a time, without reading the whole
    file into memory.

    Raises:
        FileNotFoundError: there is no such file, or it is a folder.
        ValueError: the file is not a UTF-8 JSON list, or an element nests deeper than
            `MAX_DEPTH` or is longer than `MAX_ITEM_CHARS` (the message gives the item).
    """
    decoder = json.JSONDecoder()
    with open_text(path) as stream:
        reader = _ChunkReader(stream, path)
        reader.skip_space()
        if reader.at_end():
            raise ValueError(f"Unable to read '{path}' as it is empty, not a JSON list")
        if not reader.take("["):
            raise ValueError(f"Unable to read '{path}' as it is not a JSON list (no '[' first)")
        reader.skip_space()
        if reader.take("]"):
            return reader.expect_end()
        index = 0
        while True:
            yield reader.decode(decoder, index)
            index += 1
            reader.skip_space()
            if reader.take(","):
                reader.skip_space()
                continue
            if reader.take("]"):
                return reader.expect_end()
            raise ValueError(
                f"Unable to read '{path}' as item {index - 1} is not followed by ',' or ']' "
                f"(character {reader.offset})"
            )


def too_deep(value: Any, limit: int = MAX_DEPTH) -> bool:
    """Whether lists and objects in ``value`` nest deeper than ``limit`` (walked without
    recursion, so any depth is safe to check)."""
    if not isinstance(value, dict | list):
        return False
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, dict) else node
        if depth > limit:
            return True
        stack.extend((c, depth + 1) for c in children if isinstance(c, dict | list))
    return False


def _too_deep(name: str, what: str) -> str:
    return f"Unable to read {name} as {what} nests lists or objects more than {MAX_DEPTH} deep"


def _not_utf8(name: str, exc: UnicodeDecodeError) -> str:
    byte = exc.object[exc.start : exc.start + 1].hex()
    return f"Unable to read {name} as it is not UTF-8 text (byte 0x{byte} cannot be decoded)"


class _ChunkReader:
    """A window over a text stream, refilled as the parser moves along."""

    def __init__(self, stream, path) -> None:
        self.stream = stream
        self.path = path
        self.buffer = ""
        self.pos = 0
        self.consumed = 0  # characters dropped from the front of the buffer
        self.eof = False

    @property
    def offset(self) -> int:
        return self.consumed + self.pos

    def _fill(self) -> bool:
        if self.eof:
            return False
        try:
            chunk = self.stream.read(_CHUNK_CHARS)
        except UnicodeDecodeError as exc:
            raise ValueError(_not_utf8(f"'{self.path}'", exc)) from exc
        if not chunk:
            self.eof = True
            return False
        if self.pos > len(self.buffer) // 2:
            self.consumed += self.pos
            self.buffer, self.pos = self.buffer[self.pos :], 0
        self.buffer += chunk
        return True

    def skip_space(self) -> None:
        while True:
            self.pos = _WHITESPACE_RE.match(self.buffer, self.pos).end()
            if self.pos < len(self.buffer) or not self._fill():
                return

    def at_end(self) -> bool:
        return self.pos >= len(self.buffer) and not self._fill()

    def take(self, char: str) -> bool:
        if self.pos >= len(self.buffer):
            self._fill()
        if self.buffer.startswith(char, self.pos):
            self.pos += 1
            return True
        return False

    def decode(self, decoder: json.JSONDecoder, index: int) -> Any:
        while True:
            try:
                value, end = decoder.raw_decode(self.buffer, self.pos)
            except json.JSONDecodeError as exc:
                # Broken, or cut off by the end of the window: read on, up to the bound.
                if self._may_grow() and self._fill():
                    continue
                within = "" if self._may_grow() else f" within {MAX_ITEM_CHARS} characters"
                raise ValueError(
                    f"Unable to read '{self.path}' as item {index} is not valid JSON{within} "
                    f"(character {self.consumed + exc.pos}: {exc.msg})"
                ) from exc
            except RecursionError as exc:
                raise ValueError(_too_deep(f"'{self.path}'", f"item {index}")) from exc
            # A value that reaches the end of the buffer may go on in the next chunk.
            if end == len(self.buffer) and self._may_grow() and self._fill():
                continue
            if too_deep(value):
                raise ValueError(_too_deep(f"'{self.path}'", f"item {index}"))
            self.pos = end
            return value

    def _may_grow(self) -> bool:
        """Whether the item being read is still under `MAX_ITEM_CHARS`: past it the window
        stops growing, so an endless item costs neither all memory nor quadratic time."""
        return len(self.buffer) - self.pos <= MAX_ITEM_CHARS

    def expect_end(self) -> None:
        self.skip_space()
        if self.pos < len(self.buffer):
            raise ValueError(
                f"Unable to read '{self.path}' as text follows the closing ']' "
                f"(character {self.offset})"
            )
