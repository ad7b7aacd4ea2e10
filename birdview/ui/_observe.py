"""Subscribing Qt widgets to the session's psygnal signals without outliving them."""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject

__all__ = ["observe"]


def observe(owner: QObject, signal: Any, handler: Callable[..., Any]) -> None:
    """Connect ``handler`` (a method of ``owner``) to a psygnal ``signal`` until ``owner`` dies.

    psygnal drops callbacks whose Python object is garbage collected, but a Qt object can be
    deleted on the C++ side while its wrapper lives on; disconnecting on ``destroyed`` keeps a
    session from calling into a dead widget. Only weak references are kept here.
    """
    signal.connect(handler)
    ref = weakref.WeakMethod(handler)
    owner.destroyed.connect(lambda *_: _disconnect(signal, ref))


def _disconnect(signal: Any, ref: weakref.WeakMethod) -> None:
    handler = ref()
    if handler is not None:
        signal.disconnect(handler, missing_ok=True)
