"""Subscribing Qt widgets to the session's psygnal signals without outliving them."""

from __future__ import annotations

import inspect
import sys
import weakref
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject

__all__ = ["observe"]


def observe(owner: QObject, signal: Any, handler: Callable[..., Any]) -> None:
    """Connect ``handler`` (a method of ``owner``) to a psygnal ``signal`` until ``owner`` dies.

    psygnal drops callbacks whose Python object is garbage collected, but a Qt object can be
    deleted on the C++ side while its wrapper lives on; disconnecting on ``destroyed`` keeps a
    session from calling into a dead widget. Only a weak reference to ``handler`` is kept.

    psygnal stops calling a signal's observers at the first one that raises; here a failing
    handler goes to ``sys.excepthook`` (the app's error dialog) and the others still run, so
    one broken panel cannot keep the views from showing a newly opened study.
    """
    ref = weakref.WeakMethod(handler)
    count = _positional_count(handler)

    def call(*args: Any) -> None:
        method = ref()
        if method is None:
            return
        try:
            method(*(args if count is None else args[:count]))
        except Exception:  # noqa: BLE001 - reported, and the other observers still run
            sys.excepthook(*sys.exc_info())

    signal.connect(call)
    owner.destroyed.connect(lambda *_: signal.disconnect(call, missing_ok=True))


def _positional_count(handler: Callable[..., Any]) -> int | None:
    """How many of a signal's arguments ``handler`` takes (None: all of them)."""
    count = 0
    for parameter in inspect.signature(handler).parameters.values():
        if parameter.kind is parameter.VAR_POSITIONAL:
            return None
        if parameter.kind in (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD):
            count += 1
    return count
