"""The few exception types BirdView raises itself.

Everything a reader cannot turn into a `Volume` comes out as `VolumeReadError` (or its subclass
`UnsupportedImageError`), with a message that names the file and says what is wrong with it.
Messages never contain patient data.

There is no warning type: problems of the data itself (uneven spacing, a missing slice) are
logged and attached to the `Volume` (``volume.warnings``) so the UI can show them.
"""

from __future__ import annotations


class BirdViewError(Exception):
    """Base class of BirdView's own errors."""


class VolumeReadError(BirdViewError):
    """A file or folder could not be read into a volume.

    ``path`` is the offending file (or folder); ``str(error)`` names it and gives the cause,
    in the form "Unable to read 'file.dcm' as <reason>". Fixes, where there is one (a codec
    package to install), are part of the message.
    """

    def __init__(self, path: str | object, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"Unable to read {self.path!r} as {reason}")


class UnsupportedImageError(VolumeReadError):
    """The file is readable but holds something BirdView cannot show (e.g. a DICOM SR)."""


class LoadCancelled(BirdViewError):
    """The caller asked a running load to stop."""
