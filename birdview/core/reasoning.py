"""Answers of models that reason first: the thought apart from the answer.

Reasoning models write their thought before the answer, in one of these forms:

* ``<think>…</think>`` then the answer, or the answer inside ``<answer>…</answer>`` (R1-style
  VLMs);
* a family's own markers, declared by the family (`ChatMarkup.thoughts`); MedGemma 1.5 wraps
  its thought in ``<unused94>thought … <unused95>``;
* free text, then a line starting ``Final Answer:`` (MedGemma's localization replies).

`split_reasoning` separates them; boxes are read from the answer part only, so a box the
model considered and rejected while thinking is never drawn. It never raises, and is linear
in the text's length.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["Reply", "split_reasoning"]

_THINK = ("<think>", "</think>")
_ANSWER = re.compile(r"<answer>(?P<body>.*?)(?:</answer>|\Z)", re.DOTALL | re.IGNORECASE)
_FINAL = re.compile(r"^[ \t*_#]*final answer[ \t*_]*:[ \t*_]*", re.IGNORECASE | re.MULTILINE)
# MedGemma 1.5 starts its thought with the word "thought" right after the opening marker.
_THOUGHT_WORD = re.compile(r"^\s*thought\b[ \t]*\n?", re.IGNORECASE)


@dataclass(frozen=True)
class Reply:
    """A model's text, split.

    Attributes:
        answer: what the model answered (box markup kept, for the codec).
        reasoning: the thought before it; "" when there is none.
        thinking: True while the text ends inside an unclosed thought (still streaming).
    """

    answer: str
    reasoning: str = ""
    thinking: bool = False


def split_reasoning(text: str, thoughts: Iterable[tuple[str, str]] = ()) -> Reply:
    """``text`` as answer and reasoning; ``thoughts`` are the family's own (open, close)
    markers, tried after ``<think>``/``</think>``."""
    if not isinstance(text, str):
        return Reply("")
    reply = Reply(text.strip())
    for opening, closing in (_THINK, *thoughts):
        split = _split_at_markers(text, opening, closing)
        if split is not None:
            reply = split
            break
    if reply.thinking:
        return reply
    if _ANSWER.search(reply.answer):
        return _answer_tag(reply)
    return _final_answer(reply)


def _split_at_markers(text: str, opening: str, closing: str) -> Reply | None:
    start = text.find(opening)
    end = text.find(closing, start + len(opening) if start >= 0 else 0)
    if start < 0 and end < 0:
        return None
    if end < 0:  # opened, not closed yet: all of it is thought so far
        thought = _THOUGHT_WORD.sub("", text[start + len(opening) :], count=1)
        return Reply(text[:start].strip(), thought.strip(), thinking=True)
    # A closing marker without its opening one: templates that open the thought in the prompt.
    begin = start + len(opening) if 0 <= start < end else 0
    thought = _THOUGHT_WORD.sub("", text[begin:end], count=1)
    before = text[:start] if 0 <= start < end else ""
    answer = (before + text[end + len(closing) :]).strip()
    return Reply(answer, thought.strip())


def _answer_tag(reply: Reply) -> Reply:
    """The inside of ``<answer>…</answer>``; what lies outside it is reasoning too."""
    match = _ANSWER.search(reply.answer)
    assert match is not None
    outside = (reply.answer[: match.start()] + reply.answer[match.end() :]).strip()
    return Reply(match.group("body").strip(), _joined(reply.reasoning, outside))


def _final_answer(reply: Reply) -> Reply:
    """After the last "Final Answer:" line is the answer; before it, reasoning."""
    matches = list(_FINAL.finditer(reply.answer))
    if not matches:
        return reply
    last = matches[-1]
    before = reply.answer[: last.start()].strip()
    answer = reply.answer[last.end() :].strip()
    return Reply(answer, _joined(reply.reasoning, before), thinking=not answer)


def _joined(*parts: str) -> str:
    return "\n\n".join(part for part in parts if part)
