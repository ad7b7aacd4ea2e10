"""Errors of the model side. Kept free of torch so the viewer can catch them."""

from __future__ import annotations


class InferenceError(Exception):
    """Base class: something went wrong loading or running a model."""


class ModelLoadError(InferenceError):
    """A checkpoint could not be loaded; the message says why and what to do."""


class WorkerCrashedError(InferenceError):
    """The worker process died (killed, out of memory, a crash in native code)."""


class WorkerTimeoutError(InferenceError):
    """The worker stopped answering within its time limit."""
