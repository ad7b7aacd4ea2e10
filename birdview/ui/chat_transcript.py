"""The conversation as rich text for the chat panel's transcript.

`chat_html` renders the `Assistant`'s turns: each question with where it was asked, the answer
(streaming, stopped, failed, or with the parts of it that could not be read), the model card's
warnings, the reasoning folded under it, and the boxes as links ("box:<turn>:<n>") named by the
slice the views show them on. Nothing here holds state; the panel says which reasonings are open.
"""

from __future__ import annotations

import html

from birdview.core import families, geometry
from birdview.core.assistant import Assistant, ChatTurn, PlacedBox, readable_answer
from birdview.core.exports import box_colour
from birdview.core.geometry import Plane
from birdview.core.reasoning import Reply, split_reasoning
from birdview.core.volume import Volume
from birdview.ui.annotation_chat import turn_controls_html

__all__ = ["chat_html"]


def chat_html(
    assistant: Assistant, volume: Volume | None = None, open_reasoning: frozenset[int] = frozenset()
) -> str:
    """The conversation as rich text for a QTextBrowser (escaped; links "box:<turn>:<n>" and
    "reasoning:<turn>"); slices are named as the views name them when the conversation's
    ``volume`` is given; the reasoning of the turns in ``open_reasoning`` is unfolded."""
    placed = assistant.placed_boxes()
    by_turn: dict[int, list[PlacedBox]] = {}
    for p in placed:
        by_turn.setdefault(p.turn_id, []).append(p)
    family = assistant.model.family
    parts = [
        _turn_html(
            t, by_turn.get(t.turn_id, []), family, assistant.selected, volume, open_reasoning
        )
        + turn_controls_html(t, by_turn.get(t.turn_id, []), assistant.visibility)
        for t in assistant.turns
    ]
    if not parts:
        parts.append(
            "<p style='color:gray'>Draw a box (B) and ask what it is, or name a structure and "
            "press Find. Answers and their boxes appear here and on the image.</p>"
        )
    return "".join(parts)


def _slice_name(volume: Volume | None, plane: Plane, index: int) -> str:
    """As the views name the slice ("Im 276", "slice 10")."""
    if volume is None:
        return f"slice {index + 1}"
    return geometry.slice_name(volume, plane, index)


def _reading_order(volume: Volume | None, placed: list[PlacedBox]) -> list[PlacedBox]:
    """Boxes in the order their slices are read (axial: from the head down)."""
    if volume is None:
        return sorted(placed, key=lambda p: p.box.slice_index)
    return sorted(
        placed, key=lambda p: geometry.reading_position(volume, p.box.plane, p.box.slice_index)
    )


def _turn_html(
    turn: ChatTurn,
    placed: list[PlacedBox],
    family: str,
    selected: tuple[int, int] | None,
    volume: Volume | None,
    open_reasoning: frozenset[int] = frozenset(),
) -> str:
    where = (
        f"{turn.plane.value} · all slices"
        if turn.is_sweep
        else f"{turn.plane.value} · {_slice_name(volume, turn.plane, turn.slice_index)}"
    )
    region = " · about the drawn box" if turn.region is not None else ""
    out = [
        "<p style='margin-bottom:2px'><b>You</b> "
        f"<span style='color:gray'>({html.escape(where + region)})</span><br>"
        f"{html.escape(turn.question)}</p>"
    ]
    reply = _reply(turn, family)
    answer = _answer_html(turn, family, reply)
    out.append(f"<p style='margin-top:2px; margin-left:10px'>{answer}</p>")
    if turn.warnings:
        out.append(_warnings_html(turn.warnings))
    if reply.reasoning:
        out.append(_reasoning_html(turn, reply, turn.turn_id in open_reasoning))
    if placed and not turn.is_sweep:
        out.append(_box_list_html(placed, selected, volume))
    elif placed:
        out.append(_sweep_boxes_html(turn, placed, selected, volume))
    return "".join(out)


def _warnings_html(warnings: tuple[str, ...]) -> str:
    """What the model card says against the question, next to the answer it qualifies."""
    lines = "<br>".join(f"⚠ {html.escape(warning)}" for warning in warnings)
    return f"<p style='margin-top:0; margin-left:10px; color:#c08000'>{lines}</p>"


def _reply(turn: ChatTurn, family: str) -> Reply:
    """The turn's answer and reasoning: split by the worker once finished, here while the
    answer streams (it then holds both)."""
    if turn.finished:
        return Reply(turn.answer, turn.reasoning)
    thoughts = families.get(family).chat.thoughts if family in families.keys() else ()
    return split_reasoning(turn.answer, thoughts)


def _reasoning_html(turn: ChatTurn, reply: Reply, unfolded: bool) -> str:
    words = len(reply.reasoning.split())
    link = f"reasoning:{turn.turn_id}"
    if reply.thinking:  # shown as it streams: the last lines are what is being thought now
        tail = reply.reasoning[-600:]
        return (
            "<p style='margin-left:20px; margin-top:0; color:gray'><i>"
            f"{html.escape(tail).replace(chr(10), '<br>')}</i></p>"
        )
    if not unfolded:
        return (
            f"<p style='margin-left:20px; margin-top:0'><a href='{link}'>▸ Show the model's "
            f"reasoning ({words} words)</a></p>"
        )
    body = html.escape(reply.reasoning).replace("\n", "<br>")
    return (
        f"<p style='margin-left:20px; margin-top:0'><a href='{link}'>▾ Hide the reasoning</a>"
        f"<br><span style='color:gray'>{body}</span></p>"
    )


def _answer_html(turn: ChatTurn, family: str, reply: Reply) -> str:
    if turn.is_sweep and not turn.finished:
        done, total = turn.progress
        return f"<i>Searching every {turn.plane.value} slice… {done}/{total}</i>"
    text = html.escape(readable_answer(reply.answer, family))
    if turn.state == "waiting" or (turn.state == "streaming" and reply.thinking):
        text = "<i style='color:gray'>Thinking…</i>"
    elif turn.state == "streaming":
        text += " ▍"
    elif turn.state == "cancelled":
        text += " <i style='color:gray'>(stopped)</i>"
    elif turn.state == "done" and not text:
        text = "<i style='color:gray'>(empty answer)</i>"
    if turn.state == "error":
        text += f"<br><span style='color:#d04040'>⚠ {html.escape(turn.error)}</span>"
    if turn.dropped:
        noun = "part" if len(turn.dropped) == 1 else "parts"
        text += (
            f"<br><span style='color:#c08000'>{len(turn.dropped)} box {noun} of the answer "
            "could not be read and were left out.</span>"
        )
    if turn.state == "done" and not turn.is_sweep and turn.task == "VG" and not turn.boxes:
        text += "<br><span style='color:gray'>No box in the answer.</span>"
    if turn.seconds and turn.finished:
        text += f" <span style='color:gray; font-size:small'>({turn.seconds:.1f} s)</span>"
    return f"<b>Model:</b> {text}"


def _swatch(colour: int) -> str:
    r, g, b = box_colour(colour)
    return f"<span style='color:#{r:02x}{g:02x}{b:02x}'>■</span>"


def _box_list_html(
    placed: list[PlacedBox], selected: tuple[int, int] | None, volume: Volume | None
) -> str:
    items = []
    for p in placed:
        label = html.escape(p.box.label or "(unnamed)")
        mark = "<b>" if selected == (p.turn_id, p.index) else ""
        end = "</b>" if mark else ""
        size = f"{p.box.width_px:.0f}×{p.box.height_px:.0f} px"
        where = _slice_name(volume, p.box.plane, p.box.slice_index)
        items.append(
            f"{_swatch(p.colour)} <a href='box:{p.turn_id}:{p.index}'>{mark}{label}{end}</a> "
            f"<span style='color:gray'>{where}, {size}</span>"
        )
    return "<p style='margin-left:20px; margin-top:0'>" + "<br>".join(items) + "</p>"


def _sweep_boxes_html(
    turn: ChatTurn,
    placed: list[PlacedBox],
    selected: tuple[int, int] | None,
    volume: Volume | None,
) -> str:
    """A sweep's slices as links: the first, middle and last slice with a finding, in the
    order the slices are read."""
    ordered = _reading_order(volume, placed)
    picks = {0: "first", len(ordered) // 2: "middle", len(ordered) - 1: "last"}
    links = []
    for n, pick in sorted(picks.items()):
        p = ordered[n]
        where = _slice_name(volume, p.box.plane, p.box.slice_index)
        links.append(f"<a href='box:{p.turn_id}:{p.index}'>{pick} ({where})</a>")
    extent = turn.extent
    details = ""
    if extent is not None:
        lo, hi = extent.lps_min_mm, extent.lps_max_mm
        details = (
            "<br><span style='color:gray'>3D box (LPS mm): "
            f"x {lo[0]:.0f}…{hi[0]:.0f}, y {lo[1]:.0f}…{hi[1]:.0f}, z {lo[2]:.0f}…{hi[2]:.0f}"
            "</span>"
        )
    return (
        f"<p style='margin-left:20px; margin-top:0'>{_swatch(ordered[0].colour)} "
        f"{len(ordered)} boxes: " + " · ".join(links) + details + "</p>"
    )
