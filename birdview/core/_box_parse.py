"""Finding box markup in model text, whatever family's format it is in.

`scan` reads every form a codec style writes (models drift between them): ``<ref>``/``<box>``
tags, special-token tags, and JSON objects with a box key — ``"bbox_2d"`` holding x first,
``"box_2d"`` holding y first (the order is the key's, so it is read the same in any
family's text); when none of those is present, bare ``(x1,y1),(x2,y2)`` pairs (BiRD's
evaluation accepts them too). It returns the four raw numbers of each box, x first, in the
text's own units; scaling to pixels and fixing corners is the codec's job.

It never raises and its work is bounded: only the first `MAX_CHARS` characters are read, and
every pattern is linear in the text (no nested unbounded quantifiers), so a multi-megabyte
string of junk costs the same as 20k characters of it.
"""

from __future__ import annotations

import bisect
import json
import re
from dataclasses import dataclass, field

__all__ = ["MAX_CHARS", "MAX_DROPPED", "Candidate", "Scan", "scan"]

MAX_CHARS = 20_000
MAX_DROPPED = 100
_MAX_LABEL_CHARS = 200
_SNIPPET_CHARS = 60

# A number as models write it, including the junk we must recognise to reject (nan, inf).
_NUM = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?|[-+]?(?:nan|inf(?:inity)?)"
_NUM_RE = re.compile(_NUM, re.ASCII | re.IGNORECASE)
_PAIR = rf"\(\s*(?:{_NUM})\s*,\s*(?:{_NUM})\s*\)"
_COORDS = rf"{_PAIR}\s*,?\s*{_PAIR}"

# Tags. An unclosed <ref> counts when a box follows at once ("<ref>liver<box>...").
_BOX_OPEN = r"<box>|<\|box_start\|>"
_TAG_RE = re.compile(
    rf"<ref>(?P<ref1>[^<{{}}]{{0,{_MAX_LABEL_CHARS}}})(?:</ref>|(?={_BOX_OPEN}))"
    rf"|<\|object_ref_start\|>(?P<ref2>[^<{{}}]{{0,{_MAX_LABEL_CHARS}}})"
    rf"(?:<\|object_ref_end\|>|(?={_BOX_OPEN}))"
    rf"|<box>\s*(?:(?P<coords1>{_COORDS})\s*(?:</box>)?"
    rf"|(?P<raw1>[^<{{}}]{{0,200}})(?P<close1></box>)?)"
    rf"|<\|box_start\|>\s*(?:(?P<coords2>{_COORDS})\s*(?:<\|box_end\|>)?"
    rf"|(?P<raw2>[^<{{}}]{{0,200}})(?P<close2><\|box_end\|>)?)",
    re.ASCII | re.IGNORECASE,
)
# Closing tags left without their opening one are markup too.
_STRAY_TAG_RE = re.compile(r"</ref>|</box>|<\|object_ref_end\|>|<\|box_end\|>")

# A flat JSON object (box objects nest only lists). Linear: [^{}]* stops at any brace.
_OBJECT_RE = re.compile(r"\{(?P<body>[^{}]*)(?P<close>\}|\Z)")
# Box keys and the order of their numbers.
Y_FIRST_KEYS = ("box_2d",)
_BOX_KEY_RE = re.compile(r"(?<![A-Za-z0-9])b?box_2d(?![A-Za-z0-9_])")
_BBOX_RE = re.compile(
    r"""['"]?(?<![A-Za-z0-9])(?P<key>b?box_2d)['"]?\s*:\s*\[(?P<items>[^\]\[]*)(?P<close>\])?"""
)
_LABEL_RE = re.compile(
    r"""['"]label['"]\s*:\s*(?:"(?P<dq>(?:[^"\\]|\\.)*)"|'(?P<sq>(?:[^'\\]|\\.)*)')"""
)
_EMPTY_FENCE_RE = re.compile(r"```(?:json)?\s*(?:```|\Z)", re.IGNORECASE)
_FENCE_RE = re.compile(r"```(?:json)?", re.IGNORECASE)
_NO_BOXES_RE = re.compile(r"```json\s*\[\s*\]\s*(?:```|\Z)", re.IGNORECASE)  # "none found"
_BARE_RE = re.compile(_COORDS, re.ASCII | re.IGNORECASE)

# What removed markup leaves behind until `_tidy`, so that the JSON list around removed
# objects, and the spaces around removed boxes, can be found.
_GAP = "\x00"
_EMPTY_LIST_RE = re.compile(rf"\[[\s,{_GAP}]*(?:\]|\Z)")
# The lookbehind starts a match only where a run of blanks and gaps starts: linear, not
# quadratic, on long runs.
_GAP_RUN = rf"(?<![ \t{_GAP}])[ \t]*{_GAP}[{_GAP} \t]*"
_GAP_BEFORE_STOP_RE = re.compile(rf"{_GAP_RUN}(?=[.,;:!?\n]|\Z)")
_GAP_AT_LINE_START_RE = re.compile(rf"^{_GAP_RUN}", re.MULTILINE)
_GAP_RUN_RE = re.compile(_GAP_RUN)


@dataclass(frozen=True)
class Candidate:
    """Four numbers read as a box, in the text's units, and the label that goes with them."""

    numbers: tuple[float, float, float, float]
    label: str
    fragment: str


@dataclass
class Scan:
    candidates: list[Candidate] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    text_without_boxes: str = ""

    def drop(self, fragment: str, reason: str) -> None:
        """Record a fragment that could not be read; the list stays bounded."""
        if len(self.dropped) < MAX_DROPPED:
            self.dropped.append(f"{snippet(fragment)}: {reason}")
        elif len(self.dropped) == MAX_DROPPED:
            self.dropped.append("more unreadable fragments were not listed")


def snippet(fragment: str) -> str:
    """A short, quoted piece of a fragment, safe to show whatever it contains."""
    short = fragment if len(fragment) <= _SNIPPET_CHARS else fragment[:_SNIPPET_CHARS] + "…"
    return repr(short)


def scan(text: str) -> Scan:
    """Every box in ``text`` in order of appearance, with the markup-free remainder."""
    result = Scan()
    if not isinstance(text, str):
        result.drop(repr(type(text)), "not text")
        return result
    if len(text) > MAX_CHARS:
        result.drop(text[MAX_CHARS:], f"only the first {MAX_CHARS} of {len(text)} characters read")
        text = text[:MAX_CHARS]
    text = text.replace(_GAP, "")  # reserved for marking removed markup
    edits: list[tuple[int, int, str]] = []  # (start, end, replacement) in text order
    objects = [m for m in _OBJECT_RE.finditer(text) if _BOX_KEY_RE.search(m.group("body"))]
    starts = [m.start() for m in objects]
    tags = [m for m in _TAG_RE.finditer(text) if not _inside(m, objects, starts)]
    events = sorted(
        [(m.start(), "json", m) for m in objects] + [(m.start(), "tag", m) for m in tags],
        key=lambda event: event[0],
    )
    label, refs, saw_box = "", [], False  # refs: (position, label), for bare boxes
    for _, kind, match in events:
        if kind == "json":
            _read_object(match, label, result)
            edits.append((match.start(), match.end(), _GAP))
            saw_box = True
            continue
        ref = match.group("ref1") if match.group("ref1") is not None else match.group("ref2")
        if ref is not None:
            label = _clean_label(ref)
            refs.append((match.start(), label))
            edits.append((match.start(), match.end(), ref))
        else:
            _read_tag_box(match, label, result)
            edits.append((match.start(), match.end(), _GAP))
            saw_box = True
    if not saw_box:
        _read_bare_boxes(text, refs, result, edits)
    result.text_without_boxes = _tidy(_apply(text, edits), had_json=bool(objects))
    return result


def _read_bare_boxes(
    text: str, refs: list[tuple[int, str]], result: Scan, edits: list[tuple[int, int, str]]
) -> None:
    """``(x1,y1),(x2,y2)`` without markup, as BiRD's evaluation reads them when a text has no
    box tags; each takes the label of the last <ref> before it."""
    positions = [position for position, _ in refs]
    for match in _BARE_RE.finditer(text):
        n = bisect.bisect_right(positions, match.start()) - 1
        label = refs[n][1] if n >= 0 else ""
        _add_numbers(match.group(0), _NUM_RE.findall(match.group(0)), label, result)
        edits.append((match.start(), match.end(), _GAP))


def _inside(match: re.Match, objects: list[re.Match], starts: list[int]) -> bool:
    """Whether a tag lies within a JSON object (e.g. in its label): the object wins. Tags
    hold no braces, so a tag that starts inside an object also ends inside it."""
    n = bisect.bisect_right(starts, match.start()) - 1
    return n >= 0 and match.start() < objects[n].end()


def _read_tag_box(match: re.Match, label: str, result: Scan) -> None:
    coords = match.group("coords1") or match.group("coords2")
    if coords:
        _add_numbers(match.group(0), _NUM_RE.findall(coords), label, result)
        return
    raw = match.group("raw1") if match.group("raw1") is not None else match.group("raw2")
    if not raw.strip():
        result.drop(match.group(0), "the box holds no coordinates")
        return
    # Without its closing tag, "(12,34),(56,7" may be a number cut short: not a box.
    if not (match.group("close1") or match.group("close2")):
        result.drop(match.group(0), "the box is cut off or malformed")
        return
    # Other spellings of four numbers ("[1, 2, 3, 4]", "1,2,3,4") are fine; prose is not.
    if re.search(r"[A-Za-z]", _NUM_RE.sub("", raw)):
        result.drop(match.group(0), "the box holds text, not four coordinates")
        return
    _add_numbers(match.group(0), _NUM_RE.findall(raw), label, result)


def _read_object(match: re.Match, label: str, result: Scan) -> None:
    body, fragment = match.group("body"), match.group(0)
    if not match.group("close"):
        result.drop(fragment, "the JSON object is cut off")
        return
    bbox = _BBOX_RE.search(body)
    if bbox is None or bbox.group("close") is None:
        key = bbox.group("key") if bbox is not None else "bbox_2d"
        order = "[y0, x0, y1, x1]" if key in Y_FIRST_KEYS else "[x1, y1, x2, y2]"
        result.drop(fragment, f'"{key}" is not followed by a complete {order} list')
        return
    items = [item.strip().strip("'\"").strip() for item in bbox.group("items").split(",")]
    if items == [""]:
        items = []
    bad = [item for item in items if not _NUM_RE.fullmatch(item)]
    if bad:
        key = bbox.group("key")
        result.drop(fragment, f'"{key}" holds {snippet(bad[0])}, which is not a number')
        return
    if bbox.group("key") in Y_FIRST_KEYS and len(items) == 4:
        items = [items[1], items[0], items[3], items[2]]
    own = _LABEL_RE.search(body)
    if own is not None:
        label = _clean_label(_unescape(own.group("dq"), own.group("sq")))
    _add_numbers(fragment, items, label, result)


def _add_numbers(fragment: str, items: list[str], label: str, result: Scan) -> None:
    if len(items) != 4:
        result.drop(fragment, f"expected 4 coordinates, found {len(items)}")
        return
    numbers = tuple(float(item) for item in items)
    result.candidates.append(Candidate(numbers, label, fragment))  # type: ignore[arg-type]


def _unescape(double_quoted: str | None, single_quoted: str | None) -> str:
    if double_quoted is None:
        return single_quoted or ""
    try:
        return json.loads(f'"{double_quoted}"')
    except ValueError:  # a stray backslash sequence: show it as written
        return double_quoted


def _clean_label(label: str) -> str:
    """One line of at most `_MAX_LABEL_CHARS` printable characters."""
    printable = "".join(ch if ch.isprintable() else " " for ch in label)
    return " ".join(printable.split())[:_MAX_LABEL_CHARS]


def _apply(text: str, edits: list[tuple[int, int, str]]) -> str:
    pieces, position = [], 0
    for start, end, replacement in sorted(edits, key=lambda e: e[0]):
        if start < position:  # overlapping match (cannot happen by construction): keep first
            continue
        pieces.extend((text[position:start], replacement))
        position = end
    pieces.append(text[position:])
    return "".join(pieces)


def _tidy(text: str, *, had_json: bool) -> str:
    """Remove what box markup leaves behind: JSON lists of removed objects, their fences,
    stray closing tags, and the spaces around a removed box ("located at ." → "located at.")."""
    text = _NO_BOXES_RE.sub(_GAP, _STRAY_TAG_RE.sub(_GAP, text))
    text = _EMPTY_LIST_RE.sub(lambda m: "" if _GAP in m.group(0) else m.group(0), text)
    if had_json:
        text = _FENCE_RE.sub("", _EMPTY_FENCE_RE.sub("", text))
    text = _GAP_BEFORE_STOP_RE.sub("", text)
    text = _GAP_AT_LINE_START_RE.sub("", text)
    text = _GAP_RUN_RE.sub(" ", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()
