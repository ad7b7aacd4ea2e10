"""`Session`: validation, clamping, presets, and signals that fire only on real changes."""

from __future__ import annotations

import numpy as np
import pytest

from birdview.core.display import PRESETS, Window, default_window
from birdview.core.geometry import Plane, index_to_view, to_canonical
from birdview.core.io.catalog import Catalog
from birdview.core.session import LAYOUTS, Session
from birdview.core.volume import Volume


def _volume(modality: str = "CT", shape: tuple[int, int, int] = (5, 6, 7), **kwargs) -> Volume:
    voxels = np.arange(np.prod(shape), dtype=np.int16).reshape(shape)
    return Volume(voxels, spacing_mm=(0.8, 0.8, 2.5), modality=modality, **kwargs)


class Recorder:
    """Collects (field, new value) for every signal of a session."""

    def __init__(self, session: Session) -> None:
        self.calls: list[tuple[str, object]] = []
        for name in ("catalog", "entry", "volume", "window", "cursor_ijk", "main_plane", "layout"):
            getattr(session.events, name).connect(
                lambda value, *_rest, name=name: self.calls.append((name, value))
            )

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]


def test_new_session_is_empty() -> None:
    session = Session()
    assert session.volume is None and session.window is None
    assert session.slice_count(Plane.AXIAL) == 0
    assert session.slice_index(Plane.CORONAL) == 0
    assert session.layout in LAYOUTS


def test_open_volume_centres_cursor_and_sets_default_window() -> None:
    session = Session()
    volume = _volume(window=(40.0, 400.0))
    session.open_volume(volume, None, Plane.CORONAL)
    assert session.volume is volume
    assert session.cursor_ijk == (3, 3, 2)  # (i, j, k) of shape (k, j, i) = (5, 6, 7)
    assert session.window == Window(40, 400)
    assert session.main_plane is Plane.CORONAL


def test_open_volume_sets_every_field_before_any_signal_fires() -> None:
    session = Session()
    seen = []
    session.events.volume.connect(lambda *_: seen.append((session.cursor_ijk, session.window)))
    volume = _volume(shape=(9, 4, 4), window=(10.0, 20.0))
    session.open_volume(volume)
    assert seen == [((2, 2, 4), Window(10, 20))]


def test_open_volume_rejects_non_volumes() -> None:
    with pytest.raises(TypeError, match="is not one"):
        Session().open_volume(np.zeros((3, 3, 3)))  # type: ignore[arg-type]


def test_set_slice_clamps_and_keeps_in_plane_cursor() -> None:
    session = Session()
    session.open_volume(_volume())
    session.move_cursor((1, 2, 3))
    session.set_slice(Plane.AXIAL, 99)
    assert session.cursor_ijk == (1, 2, 4)
    session.set_slice(Plane.AXIAL, -5)
    assert session.cursor_ijk == (1, 2, 0)
    session.set_slice(Plane.SAGITTAL, 6)
    assert session.cursor_ijk == (6, 2, 0)
    assert session.slice_index(Plane.SAGITTAL) == 6


def test_scroll_moves_by_delta_in_each_plane() -> None:
    session = Session()
    volume = _volume()
    session.open_volume(volume)
    for plane in Plane:
        before = session.slice_index(plane)
        session.scroll(plane, 1)
        assert session.slice_index(plane) == min(before + 1, session.slice_count(plane) - 1)
        session.scroll(plane, -100)
        assert session.slice_index(plane) == 0
        assert session.slice_index(plane) == index_to_view(volume, plane, session.cursor_ijk)[0]


def test_move_cursor_rounds_and_clamps() -> None:
    session = Session()
    session.open_volume(_volume())
    session.move_cursor((2.6, -3.0, 100.0))
    assert session.cursor_ijk == (3, 0, 4)
    with pytest.raises(ValueError, match="not a finite"):
        session.move_cursor((np.nan, 0, 0))


def test_signals_fire_only_on_real_changes() -> None:
    session = Session()
    session.open_volume(_volume())
    recorder = Recorder(session)
    session.move_cursor(session.cursor_ijk)
    session.set_slice(Plane.AXIAL, session.slice_index(Plane.AXIAL))
    session.set_window(session.window)
    session.set_layout(session.layout)
    session.set_main_plane(session.main_plane)
    assert recorder.calls == []
    session.scroll(Plane.AXIAL, 1)
    session.set_window(Window(1, 2))
    session.set_layout("1+3")
    session.set_main_plane(Plane.SAGITTAL)
    assert recorder.names() == ["cursor_ijk", "window", "layout", "main_plane"]


def test_presets_give_the_table_values_for_ct() -> None:
    session = Session()
    session.open_volume(_volume("CT"))
    expected = list(PRESETS.values())
    for number in range(1, 8):
        assert session.apply_preset(number) is True
        assert session.window == expected[number - 1]
    session.apply_preset(3)
    assert (session.window.width, session.window.center) == (1500, -600)  # lung
    with pytest.raises(ValueError, match="presets are 1-7"):
        session.apply_preset(8)


def test_presets_do_nothing_for_other_modalities() -> None:
    session = Session()
    assert session.apply_preset(1) is False
    session.open_volume(_volume("MR"))
    before = session.window
    assert session.apply_preset(3) is False
    assert session.window == before


def test_auto_and_reset_window() -> None:
    session = Session()
    volume = _volume("CT", window=(40.0, 400.0))
    session.open_volume(volume)
    session.apply_auto_window()
    assert session.window != Window(40, 400)
    session.reset_window()
    assert session.window == default_window(volume)


def test_set_window_validates() -> None:
    session = Session()
    with pytest.raises(TypeError, match="not a Window"):
        session.set_window((40, 400))  # type: ignore[arg-type]
    session.set_window(Window(1, 2))  # nothing open: ignored
    assert session.window is None


def test_layout_and_main_plane_validate() -> None:
    session = Session()
    with pytest.raises(ValueError, match="not one of"):
        session.set_layout("2x2")
    with pytest.raises(ValueError):
        session.set_main_plane("oblique")  # type: ignore[arg-type]
    session.set_main_plane("coronal")  # type: ignore[arg-type]
    assert session.main_plane is Plane.CORONAL


def test_catalog_and_close() -> None:
    session = Session()
    recorder = Recorder(session)
    catalog = Catalog(root="somewhere")
    session.open_catalog(catalog)
    session.open_catalog(catalog)
    session.open_volume(_volume())
    session.close_volume()
    assert session.volume is None and session.window is None
    assert session.catalog is catalog
    assert recorder.names().count("catalog") == 1
    assert recorder.names()[-1] in ("window", "cursor_ijk")


def test_canonical_volume_cursor_follows_acquisition_slices() -> None:
    # A volume stored superior→inferior: canonical order flips k, the cursor stays in range.
    direction = np.diag([1.0, 1.0, -1.0])
    raw = Volume(np.zeros((4, 3, 3), np.int16), direction=direction, modality="CT")
    session = Session()
    session.open_volume(to_canonical(raw))
    session.set_slice(Plane.AXIAL, 3)
    assert session.cursor_ijk[2] == 3
