"""Reading a large JSON list one element at a time (`json.JSONDecoder.raw_decode` over a
window of the file that is refilled as it goes), so a 300 MB file never sits in memory whole."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from typing import Any

__all__ = ["iter_json_list"]

_CHUNK_CHARS = 1 << 20
_WHITESPACE_RE = re.compile(r"\s*")


def iter_json_list(path: str | os.PathLike) -> Iterator[Any]:
    """The elements of the JSON list in ``path``, one at a time, without reading the whole
    file into memory.

    Raises:
        FileNotFoundError: there is no such file.
        ValueError: the file is not a JSON list (the message gives the character offset).
    """
    decoder = json.JSONDecoder()
    with open(path, encoding="utf-8") as stream:
        reader = _ChunkReader(stream)
        reader.skip_space()
        if not reader.take("["):
            raise ValueError(f"Unable to read '{path}' as it is not a JSON list (no '[' first)")
        reader.skip_space()
        if reader.take("]"):
            return reader.expect_end(path)
        index = 0
        while True:
            yield reader.decode(decoder, path, index)
            index += 1
            reader.skip_space()
            if reader.take(","):
                reader.skip_space()
                continue
            if reader.take("]"):
                return reader.expect_end(path)
            raise ValueError(
                f"Unable to read '{path}' as item {index - 1} is not followed by ',' or ']' "
                f"(character {reader.offset})"
            )


class _ChunkReader:
    """A window over a text stream, refilled as the parser moves along."""

    def __init__(self, stream) -> None:
        self.stream = stream
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
        chunk = self.stream.read(_CHUNK_CHARS)
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

    def take(self, char: str) -> bool:
        if self.pos >= len(self.buffer):
            self._fill()
        if self.buffer.startswith(char, self.pos):
            self.pos += 1
            return True
        return False

    def decode(self, decoder: json.JSONDecoder, path, index: int) -> Any:
        while True:
            try:
                value, end = decoder.raw_decode(self.buffer, self.pos)
            except json.JSONDecodeError as exc:
                if self._fill():
                    continue
                raise ValueError(
                    f"Unable to read '{path}' as item {index} is not valid JSON "
                    f"(character {self.consumed + exc.pos}: {exc.msg})"
                ) from exc
            # A value that reaches the end of the buffer may go on in the next chunk.
            if end == len(self.buffer) and self._fill():
                continue
            self.pos = end
            return value

    def expect_end(self, path) -> None:
        self.skip_space()
        if self.pos < len(self.buffer):
            raise ValueError(
                f"Unable to read '{path}' as text follows the closing ']' (character {self.offset})"
            )
