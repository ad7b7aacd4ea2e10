"""Every QSettings access of the viewer, as typed accessors (window state only, no domain data).

The organisation and application names are set once, in `birdview.ui.app.run`; everything else
reads and writes through `Settings`. Bump `SETTINGS_VERSION` when the dock or toolbar layout
changes incompatibly: `Settings.check_version` then drops the stored geometry and dock state.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import QByteArray, QSettings

from birdview.core.mouse_map import MouseMap, MouseMapError
from birdview.core.slab import Slab

__all__ = ["DEFAULT_CINE_FPS", "FPS_RANGE", "MAX_RECENT", "SETTINGS_VERSION", "Settings"]

logger = logging.getLogger(__name__)

FPS_RANGE = (1, 60)  # the cine frame rates offered

SETTINGS_VERSION = 2  # 2: model and chat docks, tool bar
MAX_RECENT = 10

_KEY_VERSION = "settings_version"
_KEY_GEOMETRY = "window/geometry"
_KEY_DOCKS = "window/dock_state"
_KEY_RECENT = "files/recent_paths"
_KEY_LAYOUT = "view/layout"
_KEY_LAST_DIR = "files/last_directory"
_KEY_MODEL = "model/model_dir"
_KEY_ADAPTER = "model/adapter_dir"
_KEY_PRECISION = "model/precision"
_KEY_DEVICE = "model/device"
_KEY_SEGMENTER = "segmentation/model_dir"
_KEY_ANONYMISE = "export/anonymise"
_KEY_EXPORT_DIR = "export/last_directory"
_KEY_MOUSE = "view/mouse_map"
_KEY_CINE_FPS = "view/cine_fps"
_KEY_SLAB_MODE = "view/slab_mode"
_KEY_SLAB_MM = "view/slab_thickness_mm"
DEFAULT_CINE_FPS = 10


class Settings:
    """Typed accessors over the application's QSettings."""

    def __init__(self, qsettings: QSettings | None = None) -> None:
        self._qs = qsettings if qsettings is not None else QSettings()

    def check_version(self) -> bool:
        """Reset the stored layout if it was written by another settings version.

        Returns True when something was reset.
        """
        stored = self._qs.value(_KEY_VERSION, None)
        reset = stored is not None and _to_int(stored) != SETTINGS_VERSION
        if reset:
            logger.info(
                "settings version %s != %d: resetting window layout", stored, SETTINGS_VERSION
            )
            for key in (_KEY_GEOMETRY, _KEY_DOCKS, _KEY_LAYOUT):
                self._qs.remove(key)
        self._qs.setValue(_KEY_VERSION, SETTINGS_VERSION)
        return reset

    # -- window state ------------------------------------------------------------------------

    def geometry(self) -> QByteArray | None:
        return _to_bytes(self._qs.value(_KEY_GEOMETRY, None))

    def set_geometry(self, data: QByteArray) -> None:
        self._qs.setValue(_KEY_GEOMETRY, data)

    def dock_state(self) -> QByteArray | None:
        return _to_bytes(self._qs.value(_KEY_DOCKS, None))

    def set_dock_state(self, data: QByteArray) -> None:
        self._qs.setValue(_KEY_DOCKS, data)

    def layout(self) -> str:
        value = self._qs.value(_KEY_LAYOUT, "1x1")
        return value if value in ("1x1", "1+3") else "1x1"

    def set_layout(self, layout: str) -> None:
        self._qs.setValue(_KEY_LAYOUT, layout)

    def mouse_map(self) -> MouseMap:
        """The saved mouse mapping; the default when none is saved or the saved one is wrong."""
        text = str(self._qs.value(_KEY_MOUSE, "") or "")
        if not text:
            return MouseMap.default()
        try:
            return MouseMap.from_text(text)
        except MouseMapError as exc:
            logger.warning("settings %s: %s; using the default mouse mapping", _KEY_MOUSE, exc)
            return MouseMap.default()

    def set_mouse_map(self, mouse_map: MouseMap) -> None:
        self._qs.setValue(_KEY_MOUSE, mouse_map.to_text())

    # -- review preferences (the reader's, not a study's) ------------------------------------

    def cine_fps(self) -> int:
        """The cine frame rate last chosen, within `FPS_RANGE` (10 until one is chosen)."""
        fps = _to_int(self._qs.value(_KEY_CINE_FPS, DEFAULT_CINE_FPS))
        if fps is None:
            return DEFAULT_CINE_FPS
        return min(max(fps, FPS_RANGE[0]), FPS_RANGE[1])

    def set_cine_fps(self, fps: int) -> None:
        self._qs.setValue(_KEY_CINE_FPS, int(fps))

    def slab(self) -> Slab:
        """The thick-slab mode and thickness last chosen; off, 10 mm when none is saved or
        the saved one is wrong (a hand-edited file)."""
        mode = str(self._qs.value(_KEY_SLAB_MODE, "off") or "off")
        try:
            thickness = float(self._qs.value(_KEY_SLAB_MM, 10.0))
            return Slab(mode, thickness)  # type: ignore[arg-type]
        except (TypeError, ValueError) as exc:
            logger.warning("settings %s: %s; using no slab", _KEY_SLAB_MODE, exc)
            return Slab()

    def set_slab(self, slab: Slab) -> None:
        self._qs.setValue(_KEY_SLAB_MODE, slab.mode)
        self._qs.setValue(_KEY_SLAB_MM, slab.thickness_mm)

    # -- files -------------------------------------------------------------------------------

    def recent_paths(self) -> list[str]:
        """Most recent first, at most `MAX_RECENT`."""
        value = self._qs.value(_KEY_RECENT, [])
        if isinstance(value, str):  # QSettings gives a bare string for a one-item list
            value = [value]
        return [str(v) for v in (value or []) if v][:MAX_RECENT]

    def add_recent_path(self, path: str) -> None:
        paths = [path] + [p for p in self.recent_paths() if p != path]
        self._qs.setValue(_KEY_RECENT, paths[:MAX_RECENT])

    def clear_recent_paths(self) -> None:
        self._qs.remove(_KEY_RECENT)

    def last_directory(self) -> str:
        return str(self._qs.value(_KEY_LAST_DIR, "") or "")

    def set_last_directory(self, path: str) -> None:
        self._qs.setValue(_KEY_LAST_DIR, path)

    # -- model -------------------------------------------------------------------------------

    def model_dir(self) -> str:
        return str(self._qs.value(_KEY_MODEL, "") or "")

    def adapter_dir(self) -> str:
        return str(self._qs.value(_KEY_ADAPTER, "") or "")

    def model_precision(self) -> str:
        return str(self._qs.value(_KEY_PRECISION, "auto") or "auto")

    def model_device(self) -> str:
        return str(self._qs.value(_KEY_DEVICE, "auto") or "auto")

    def set_model(self, model_dir: str, adapter_dir: str, precision: str, device: str) -> None:
        self._qs.setValue(_KEY_MODEL, model_dir)
        self._qs.setValue(_KEY_ADAPTER, adapter_dir)
        self._qs.setValue(_KEY_PRECISION, precision)
        self._qs.setValue(_KEY_DEVICE, device)

    def segmenter_dir(self) -> str:
        """The segmentation checkpoint *Segment box* uses ("" until one is chosen)."""
        return str(self._qs.value(_KEY_SEGMENTER, "") or "")

    def set_segmenter_dir(self, path: str) -> None:
        self._qs.setValue(_KEY_SEGMENTER, path)

    # -- exports -----------------------------------------------------------------------------

    def anonymise_exports(self) -> bool:
        return str(self._qs.value(_KEY_ANONYMISE, "false")).lower() in ("true", "1")

    def set_anonymise_exports(self, on: bool) -> None:
        self._qs.setValue(_KEY_ANONYMISE, "true" if on else "false")

    def export_directory(self) -> str:
        """The folder the last export was saved to ("" before the first)."""
        return str(self._qs.value(_KEY_EXPORT_DIR, "") or "")

    def set_export_directory(self, path: str) -> None:
        self._qs.setValue(_KEY_EXPORT_DIR, path)

    def sync(self) -> None:
        self._qs.sync()


def _to_int(value: object) -> int | None:
    try:
        return int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def _to_bytes(value: object) -> QByteArray | None:
    if isinstance(value, QByteArray) and not value.isEmpty():
        return value
    if isinstance(value, (bytes, bytearray)) and value:
        return QByteArray(bytes(value))
    return None
