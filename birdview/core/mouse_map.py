"""`MouseMap`: which mouse gesture does what in a slice view (no Qt).

A gesture is a button drag ("left", "middle", "right") or the wheel, each with an optional
modifier ("", "shift", "ctrl", "alt"). The default is what radiologists know from their PACS:
left drag W/L (or the active tool), right drag zoom, middle drag pan, wheel scroll, Ctrl+wheel
zoom. The map is saved as short text ("left=tool; right=zoom; ...") in the settings, and is
checked when read back, so a hand-edited settings file cannot leave the mouse doing nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "ACTIONS",
    "BUTTONS",
    "MODIFIERS",
    "WHEEL_ACTIONS",
    "MouseMap",
    "MouseMapError",
    "GESTURES",
    "actions_for",
    "describe_action",
    "gesture_name",
]

BUTTONS = ("left", "middle", "right", "wheel")
MODIFIERS = ("", "shift", "ctrl", "alt")
# What a drag can do. "tool" is the active tool of the tool bar (W/L when none is chosen).
ACTIONS = ("tool", "window", "zoom", "pan", "scroll", "none")
WHEEL_ACTIONS = ("scroll", "zoom", "none")

# Every gesture a map can bind, in the order a settings dialog lists them.
GESTURES = tuple((button, modifier) for button in BUTTONS for modifier in MODIFIERS)

_WORDS = {
    "tool": "active tool (window/level, box, ruler, …)",
    "window": "window/level",
    "zoom": "zoom",
    "pan": "pan",
    "scroll": "scroll through slices",
    "none": "nothing",
}

_DEFAULT = {
    ("left", ""): "tool",
    ("middle", ""): "pan",
    ("right", ""): "zoom",
    ("left", "shift"): "pan",
    ("left", "ctrl"): "zoom",
    ("wheel", ""): "scroll",
    ("wheel", "ctrl"): "zoom",
}


class MouseMapError(ValueError):
    """A mouse mapping that cannot be used; the message says which part is wrong."""


def describe_action(action: str) -> str:
    return _WORDS[action]


def actions_for(button: str) -> tuple[str, ...]:
    """What ``button`` can be bound to: the wheel cannot drag (no tool, W/L or pan)."""
    return WHEEL_ACTIONS if button == "wheel" else ACTIONS


def gesture_name(button: str, modifier: str) -> str:
    """A gesture in words: "Ctrl+left drag", "Wheel"."""
    base = "wheel" if button == "wheel" else f"{button} drag"
    return f"{modifier.capitalize()}+{base}" if modifier else base.capitalize()


@dataclass(frozen=True)
class MouseMap:
    """(button, modifier) -> action. Gestures not in the map do nothing."""

    bindings: dict[tuple[str, str], str] = field(default_factory=lambda: dict(_DEFAULT))

    def __post_init__(self) -> None:
        for (button, modifier), action in self.bindings.items():
            _check(button, modifier, action)
        tools = sorted(k for k, action in self.bindings.items() if action == "tool")
        if not tools:
            raise MouseMapError("no gesture uses the active tool: measurements could not be drawn")
        if len(tools) > 1:  # a click on either would move the cursor and start a drawing
            names = " and ".join(gesture_name(*k) for k in tools)
            raise MouseMapError(f"the active tool is on {names}: give it one gesture only")

    @classmethod
    def default(cls) -> MouseMap:
        return cls()

    def action(self, button: str, modifier: str = "") -> str:
        """What a drag of ``button`` (or the wheel) with ``modifier`` held does."""
        return self.bindings.get((button, modifier), "none")

    def with_binding(self, button: str, modifier: str, action: str) -> MouseMap:
        bindings = dict(self.bindings)
        bindings[(button, modifier)] = action
        return MouseMap(bindings)

    def rows(self) -> list[tuple[str, str]]:
        """(gesture, what it does) in a stable order, for the help overlay."""
        order = {b: n for n, b in enumerate(BUTTONS)}
        keys = sorted(self.bindings, key=lambda k: (MODIFIERS.index(k[1]) > 0, order[k[0]], k[1]))
        return [
            (gesture_name(b, m), describe_action(self.bindings[(b, m)]))
            for b, m in keys
            if self.bindings[(b, m)] != "none"
        ]

    def to_text(self) -> str:
        return "; ".join(
            f"{m + '+' if m else ''}{b}={a}" for (b, m), a in sorted(self.bindings.items())
        )

    @classmethod
    def from_text(cls, text: str) -> MouseMap:
        """Parse `to_text`'s form; a wrong part raises `MouseMapError` naming it."""
        bindings: dict[tuple[str, str], str] = {}
        for part in (p.strip() for p in text.split(";")):
            if not part:
                continue
            gesture, sep, action = part.partition("=")
            if not sep:
                raise MouseMapError(f"{part!r}: expected gesture=action, e.g. 'right=zoom'")
            modifier, _, button = gesture.strip().lower().rpartition("+")
            bindings[(button, modifier)] = action.strip().lower()
        if not bindings:
            raise MouseMapError("the mouse mapping is empty")
        return cls(bindings)


def _check(button: str, modifier: str, action: str) -> None:
    if button not in BUTTONS:
        raise MouseMapError(f"unknown mouse button {button!r} (one of {', '.join(BUTTONS)})")
    if modifier not in MODIFIERS:
        raise MouseMapError(f"unknown modifier {modifier!r} (shift, ctrl or alt)")
    allowed = actions_for(button)
    if action not in allowed:
        raise MouseMapError(
            f"{gesture_name(button, modifier)} cannot {action!r} (one of {', '.join(allowed)})"
        )
