"""The mouse map's core: the radiology default, text round trip, and clear refusals."""

from __future__ import annotations

import pytest

from birdview.core.mouse_map import MouseMap, MouseMapError


def test_default_is_what_pacs_users_expect() -> None:
    m = MouseMap.default()
    assert m.action("left") == "tool"
    assert m.action("right") == "zoom"
    assert m.action("middle") == "pan"
    assert m.action("wheel") == "scroll"
    assert m.action("wheel", "ctrl") == "zoom"
    assert m.action("right", "alt") == "none"  # unmapped: nothing


def test_text_round_trip_keeps_every_binding() -> None:
    m = (
        MouseMap.default()
        .with_binding("right", "shift", "scroll")
        .with_binding("middle", "", "zoom")
    )
    back = MouseMap.from_text(m.to_text())
    assert back == m and back.action("right", "shift") == "scroll"


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("left=tool; thumb=pan", "unknown mouse button 'thumb'"),
        ("left=tool; hyper+right=pan", "unknown modifier 'hyper'"),
        ("left=tool; wheel=pan", "Wheel cannot 'pan'"),
        ("left=fly", "Left drag cannot 'fly'"),
        ("left tool", "expected gesture=action"),
        ("right=zoom", "no gesture uses the active tool"),
        ("left=tool; shift+right=tool", "active tool is on Left drag and Shift\\+right drag"),
        ("", "empty"),
    ],
)
def test_wrong_text_is_refused_naming_the_part(text: str, words: str) -> None:
    with pytest.raises(MouseMapError, match=words):
        MouseMap.from_text(text)


def test_rows_list_each_active_gesture_once_in_words() -> None:
    rows = dict(MouseMap.default().with_binding("right", "alt", "none").rows())
    assert rows["Left drag"].startswith("active tool")
    assert rows["Right drag"] == "zoom" and rows["Ctrl+wheel"] == "zoom"
    assert "Alt+right drag" not in rows
