"""`Settings`: typed accessors, recent paths, and the version key that resets the layout."""

from __future__ import annotations

from PySide6.QtCore import QByteArray, QSettings

from birdview.core.slab import Slab
from birdview.ui.settings import MAX_RECENT, SETTINGS_VERSION, Settings


def test_recent_paths_are_most_recent_first_unique_and_capped() -> None:
    settings = Settings()
    assert settings.recent_paths() == []
    for n in range(MAX_RECENT + 3):
        settings.add_recent_path(f"/data/study{n}")
    settings.add_recent_path("/data/study5")
    paths = settings.recent_paths()
    assert len(paths) == MAX_RECENT
    assert paths[0] == "/data/study5" and paths.count("/data/study5") == 1
    assert paths[1] == f"/data/study{MAX_RECENT + 2}"
    settings.clear_recent_paths()
    assert settings.recent_paths() == []


def test_one_recent_path_round_trips() -> None:
    Settings().add_recent_path("/only/one")
    assert Settings().recent_paths() == ["/only/one"]


def test_layout_defaults_and_validates() -> None:
    settings = Settings()
    assert settings.layout() == "1x1"
    settings.set_layout("1+3")
    assert Settings().layout() == "1+3"
    QSettings().setValue("view/layout", "9x9")
    assert Settings().layout() == "1x1"


def test_version_change_resets_window_layout_only() -> None:
    settings = Settings()
    assert settings.check_version() is False  # first run: nothing to reset
    settings.set_geometry(QByteArray(b"geometry"))
    settings.set_dock_state(QByteArray(b"docks"))
    settings.add_recent_path("/kept")
    assert Settings().check_version() is False
    assert Settings().geometry() == QByteArray(b"geometry")
    QSettings().setValue("settings_version", SETTINGS_VERSION - 1)
    assert Settings().check_version() is True
    again = Settings()
    assert again.geometry() is None and again.dock_state() is None
    assert again.recent_paths() == ["/kept"]


def test_settings_live_in_the_test_ini_file(tmp_path) -> None:
    Settings().add_recent_path("/x")
    assert QSettings().fileName().startswith(str(tmp_path))


def test_cine_rate_and_slab_round_trip_and_wrong_values_fall_back() -> None:
    settings = Settings()
    assert settings.cine_fps() == 10 and settings.slab() == Slab()
    settings.set_cine_fps(24)
    settings.set_slab(Slab("minip", 7.5))
    again = Settings()
    assert again.cine_fps() == 24 and again.slab() == Slab("minip", 7.5)
    QSettings().setValue("view/cine_fps", 500)  # hand-edited: clamped to what the box offers
    assert Settings().cine_fps() == 60
    QSettings().setValue("view/cine_fps", "fast")
    assert Settings().cine_fps() == 10
    QSettings().setValue("view/slab_mode", "maximum")
    assert Settings().slab() == Slab()
    QSettings().setValue("view/slab_mode", "mip")
    QSettings().setValue("view/slab_thickness_mm", "-3")
    assert Settings().slab() == Slab()
