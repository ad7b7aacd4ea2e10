"""The whole window on real files: open, presets, drop, errors, cancel, browsers."""

from __future__ import annotations

import math
import shutil

import pytest
from PySide6.QtCore import QEvent, QMimeData, QPoint, QPointF, Qt, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication

from birdview.core.display import PRESETS, Window
from birdview.core.errors import LoadCancelled
from birdview.core.geometry import Plane
from tests.conftest import shared
from tests.ui.helpers import CT_DICOM, CT_NIFTI, FUNDUS_RGB, mouse, open_and_wait


def test_open_dicom_folder_shows_preview_then_volume(qtbot, make_main_window) -> None:
    window = make_main_window()
    previews = []
    window.loader.previewed.connect(previews.append)
    open_and_wait(qtbot, window, CT_DICOM)
    volume = window.session.volume
    assert volume is not None and volume.shape == (20, 512, 512)
    assert len(previews) == 1 and previews[0].shape == (512, 512)
    assert window.session.main_plane is Plane.AXIAL
    overlay = window.view_layout.main_view.overlay()
    assert overlay.bottom_left[0] == "Im 276 (10/20)"  # the Instance Number; 10th from the head
    assert overlay.bottom_right[0] == window.session.window.label()
    assert window.view_layout.main_view.hasFocus() or not window.isActiveWindow()
    assert window.reporter.dialog is None
    assert window.settings.recent_paths() == [str(CT_DICOM)]


def test_preset_keys_give_the_table_windows(qtbot, make_main_window) -> None:
    window = make_main_window()
    open_and_wait(qtbot, window, CT_DICOM)
    view = window.view_layout.main_view
    view.setFocus()
    expected = list(PRESETS.values())
    for number in range(1, 8):
        qtbot.keyClick(view, getattr(Qt.Key, f"Key_{number}"))
        assert window.session.window == expected[number - 1], number
        assert view.overlay().bottom_right[0] == expected[number - 1].label()
    qtbot.keyClick(view, Qt.Key.Key_3)
    assert (window.session.window.width, window.session.window.center) == (1500, -600)
    assert view.overlay().bottom_right[0] == "W 1500 / L -600"
    assert (PRESETS["CT brain"].width, PRESETS["CT brain"].center) == (80, 40)
    assert (PRESETS["Bone"].width, PRESETS["Bone"].center) == (1800, 400)


def test_presets_are_off_for_a_colour_photo(qtbot, make_main_window) -> None:
    window = make_main_window(layout="1+3")
    open_and_wait(qtbot, window, FUNDUS_RGB)
    volume = window.session.volume
    assert volume.is_rgb and volume.shape == (1, 1024, 1024)
    before = window.session.window
    qtbot.keyClick(window.view_layout.main_view, Qt.Key.Key_3)
    assert window.session.window == before
    assert not any(a.isEnabled() for a in window.action_registry.preset_actions)
    assert window.view_layout.views() == [window.view_layout.main_view]  # 2D: one view


def _drop(window, paths) -> None:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths])
    pos = QPointF(window.rect().center())
    actions = Qt.DropAction.CopyAction
    enter = QDragEnterEvent(
        window.rect().center(),
        actions,
        mime,
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
    )
    QApplication.sendEvent(window, enter)
    assert enter.isAccepted()
    drop = QDropEvent(pos, actions, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(window, drop)


def test_drop_a_file_opens_it(qtbot, make_main_window) -> None:
    window = make_main_window()
    with qtbot.waitSignal(window.loader.loaded, timeout=20000):
        _drop(window, [CT_NIFTI])
    assert window.session.volume.shape == (30, 101, 122)
    assert window.session.entry.kind == "nifti"


def test_drop_several_files_of_a_folder_opens_the_folder(qtbot, make_main_window) -> None:
    window = make_main_window()
    files = sorted(CT_DICOM.iterdir())[:3]
    with qtbot.waitSignal(window.loader.loaded, timeout=20000):
        _drop(window, files)
    assert window.session.volume.shape[0] == 20


@pytest.mark.parametrize(
    "name, content", [("notes.dcm", b"not a DICOM file\n"), ("truncated.dcm", None)]
)
def test_unreadable_file_shows_a_dialog_naming_it(
    qtbot, make_main_window, tmp_path, name, content
) -> None:
    path = tmp_path / name
    if content is None:
        first = sorted(CT_DICOM.iterdir())[0]
        path.write_bytes(first.read_bytes()[:60000])
    else:
        path.write_bytes(content)
    window = make_main_window()
    with qtbot.waitSignal(window.reporter.reported, timeout=20000):
        window.open_path(str(path))
    dialog = window.reporter.dialog
    assert dialog is not None and dialog.isVisible()
    assert name in dialog.informativeText()
    assert "Traceback" not in dialog.informativeText() + dialog.detailedText()
    assert "could not read" in window.status.currentMessage().lower()
    assert window.session.volume is None
    problems = window.series_browser.tree.topLevelItem(0)
    assert problems.text(0) == "Could not read (1)"
    assert name in problems.child(0).text(0)


def test_load_failure_shows_the_reader_message(qtbot, make_main_window, tmp_path) -> None:
    cut = tmp_path / "cut.nii.gz"
    cut.write_bytes(CT_NIFTI.read_bytes()[:200_000])
    window = make_main_window()
    open_and_wait(qtbot, window, cut)
    dialog = window.reporter.dialog
    assert dialog is not None and dialog.isVisible()
    assert "cut.nii.gz" in dialog.informativeText() and "truncated" in dialog.informativeText()
    assert window.session.volume is None


def test_cancel_stops_the_load(qtbot, make_main_window, tmp_path) -> None:
    folder = tmp_path / "ct"
    shutil.copytree(CT_DICOM, folder)
    window = make_main_window()
    failures = []
    window.loader.failed.connect(failures.append)
    with qtbot.waitSignal(
        window.loader.busy_changed, timeout=20000, check_params_cb=lambda busy: busy is False
    ):
        window.open_path(str(folder))
        assert window.status.cancel_button.isVisibleTo(window.status)
        qtbot.mouseClick(window.status.cancel_button, Qt.MouseButton.LeftButton)
    assert len(failures) == 1 and isinstance(failures[0], LoadCancelled)
    assert window.session.volume is None
    assert window.reporter.dialog is None
    assert window.status.currentMessage() == "Loading cancelled"
    assert not window.status.progress.isVisibleTo(window.status)


def test_series_browser_lists_and_loads(qtbot, make_main_window, tmp_path) -> None:
    folder = tmp_path / "mixed"
    shutil.copytree(CT_DICOM, folder / "ct")
    shutil.copy(CT_NIFTI, folder / "small.nii.gz")
    (folder / "slice_99.dcm").write_text("not an image")
    window = make_main_window()
    open_and_wait(qtbot, window, folder)
    browser = window.series_browser
    entries = browser.entries()
    assert {e.kind for e in entries} == {"dicom", "nifti"}
    tree = browser.tree
    labels = [tree.topLevelItem(n).text(0) for n in range(tree.topLevelItemCount())]
    assert "Could not read (1)" in labels
    assert "1 file could not be read" in window.status.currentMessage()
    first = window.session.entry
    other = next(e for e in entries if e.key != first.key)
    with qtbot.waitSignal(window.loader.loaded, timeout=20000):
        browser.tree.itemClicked.emit(browser._items[other.key], 0)
    assert window.session.entry.key == other.key
    assert browser.tree.currentItem() is browser._items[other.key]
    with qtbot.waitSignal(window.loader.loaded, timeout=20000):
        browser.request_relative(-1 if entries.index(other) else 1)
    assert window.session.entry.key == first.key


def test_tag_browser_follows_slice_and_filters(qtbot, make_main_window) -> None:
    window = make_main_window()
    open_and_wait(qtbot, window, CT_DICOM)
    window.tag_dock.show()
    browser = window.tag_browser
    qtbot.waitUntil(lambda: browser.proxy.rowCount() > 20)

    def instance_number() -> str:
        rows = [browser.model._rows[n] for n in range(browser.model.rowCount())]
        return next(value for tag, _name, _vr, value in rows if tag == "(0020,0013)")

    first = instance_number()
    assert first == "276"
    assert browser.note.text() == "Slice 10 of 20"  # counted from the head, like the overlay
    window.session.scroll(Plane.AXIAL, 1)  # index + 1: one slice towards the head
    qtbot.waitUntil(lambda: instance_number() != first)
    assert instance_number() == "275"
    assert browser.note.text() == "Slice 9 of 20"
    source = window.session.volume.sources[window.session.cursor_ijk[2]]
    assert browser._shown == source
    qtbot.keyClicks(browser.search, "slice thickness")
    assert browser.proxy.rowCount() == 1
    assert browser.proxy.index(0, 0).data() == "(0018,0050)"
    browser.search.clear()
    qtbot.keyClicks(browser.search, "0028,00")
    assert 0 < browser.proxy.rowCount() < browser.model.rowCount()
    assert all(
        browser.proxy.index(n, 0).data().startswith("(0028,00")
        or "0028,00" in browser.proxy.index(n, 3).data()
        for n in range(browser.proxy.rowCount())
    )


def test_click_in_axial_moves_other_views(qtbot, make_main_window) -> None:
    window = make_main_window(layout="1+3")
    open_and_wait(qtbot, window, CT_DICOM)
    layout = window.view_layout
    session = window.session
    before = (session.slice_index(Plane.CORONAL), session.slice_index(Plane.SAGITTAL))
    main = layout.main_view
    target = main.mapFromScene(main._item.sceneBoundingRect().center()) + QPoint(60, -80)
    qtbot.mouseClick(main.viewport(), Qt.MouseButton.LeftButton, pos=target)
    after = (session.slice_index(Plane.CORONAL), session.slice_index(Plane.SAGITTAL))
    assert after[0] < before[0] and after[1] > before[1]
    coronal = layout.small_views[Plane.CORONAL].overlay().bottom_left[0]
    assert coronal == f"{after[0] + 1}/512"  # a reformat: no Instance Number
    assert layout.small_views[Plane.AXIAL].overlay().bottom_left == ["Im 276"]


def test_layout_is_remembered(qtbot, make_main_window) -> None:
    window = make_main_window()
    window.action_registry.layout_actions["1+3"].trigger()
    assert window.session.layout == "1+3"
    window.close()
    again = make_main_window()
    assert again.session.layout == "1+3"


def test_drop_a_zip_opens_the_series_inside(qtbot, make_main_window, tmp_path) -> None:
    archive = shutil.make_archive(str(tmp_path / "study"), "zip", root_dir=CT_DICOM)
    window = make_main_window()
    with qtbot.waitSignal(window.loader.loaded, timeout=20000):
        _drop(window, [archive])
    assert window.session.volume.shape == (20, 512, 512)


def test_window_menu_auto_and_header_reset(qtbot, make_main_window) -> None:
    window = make_main_window()
    open_and_wait(qtbot, window, CT_DICOM)
    header = window.session.window
    actions = window.action_registry
    actions.auto_window_action.trigger()
    assert window.session.window != header
    actions.reset_window_action.trigger()
    assert window.session.window == header == Window(*window.session.volume.window)
    assert not window.tag_dock.isVisible()
    window.tag_dock.toggleViewAction().trigger()
    assert window.tag_dock.isVisible()


def test_a_new_open_replaces_the_running_one(qtbot, make_main_window) -> None:
    window = make_main_window()
    loaded = []
    window.loader.loaded.connect(lambda volume, entry, plane: loaded.append(entry.kind))
    with qtbot.waitSignal(
        window.loader.busy_changed, timeout=20000, check_params_cb=lambda busy: busy is False
    ):
        window.open_path(str(CT_DICOM))
        window.open_path(str(CT_NIFTI))
    qtbot.wait(200)
    assert loaded == ["nifti"] and window.session.entry.kind == "nifti"
    assert window.reporter.dialog is None


# -- honest numbers ----------------------------------------------------------------------------


def _hover(view, col: int, row: int) -> tuple[int, int]:
    """Move the mouse, no button held, over about image pixel (col, row) of ``view``, and
    return the pixel under the screen point it landed on (zoomed out, one screen pixel spans
    more than one image pixel)."""
    pos = view.image_to_viewport(col + 0.5, row + 0.5).toPoint()
    no_button = Qt.MouseButton.NoButton
    mouse(view.viewport(), QEvent.Type.MouseMove, pos, no_button, no_button)
    x, y = view.viewport_to_image(QPointF(pos))
    assert abs(x - col - 0.5) < 2 and abs(y - row - 0.5) < 2
    return math.floor(x), math.floor(y)


def test_status_bar_value_follows_the_mouse_not_the_click(qtbot, make_main_window) -> None:
    window = make_main_window()
    open_and_wait(qtbot, window, CT_DICOM)
    session, view = window.session, window.view_layout.main_view
    volume = session.volume
    k = session.slice_index(Plane.AXIAL)
    assert window.status.cursor_label.text() == ""  # the mouse has not been over the image
    i, j = _hover(view, 40, 60)  # air outside the patient
    value = volume.voxels[k, j, i]
    assert window.status.cursor_label.text() == f"voxel ({i}, {j}, {k})  {value:.6g} HU"
    centre = view.viewport().rect().center()
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=centre)
    clicked = session.cursor_ijk
    i, j = _hover(view, 256, 330)  # the mouse moves on after the click: the value goes with it
    assert clicked != (i, j, k) and volume.voxels[k, j, i] != volume.voxels[clicked[::-1]]
    value = volume.voxels[k, j, i]
    assert window.status.cursor_label.text() == f"voxel ({i}, {j}, {k})  {value:.6g} HU"


def test_a_png_named_ct_is_not_ct(qtbot, make_main_window) -> None:
    """No Hounsfield units and no CT presets on a picture, whatever its name says."""
    window = make_main_window()
    open_and_wait(qtbot, window, shared("biomedparse_demo", "demo", "00_CT_lung.png"))
    session, view = window.session, window.view_layout.main_view
    assert session.volume.modality == "OT"
    before = session.window
    view.setFocus()
    qtbot.keyClick(view, Qt.Key.Key_3)  # the lung preset on a CT
    assert session.window == before
    assert not any(a.isEnabled() for a in window.action_registry.preset_actions)
    i, j = _hover(view, 300, 300)
    text = window.status.cursor_label.text()
    assert text.startswith(f"voxel ({i}, {j}, 0)") and "HU" not in text
    assert "OT" in view.overlay().top_right


def test_nifti_ct_opens_in_the_soft_tissue_window(qtbot, make_main_window) -> None:
    window = make_main_window()
    open_and_wait(qtbot, window, CT_NIFTI)
    assert window.session.volume.modality == "CT" and window.session.volume.window is None
    assert window.session.window == PRESETS["Soft tissue"]
    assert window.view_layout.main_view.overlay().bottom_right[0] == "W 400 / L 40"


def test_no_two_actions_of_the_window_share_a_key(qtbot, make_main_window) -> None:
    # Qt fires neither action of an ambiguous shortcut, so a clash silently kills both keys.
    from collections import defaultdict

    from PySide6.QtGui import QAction, QShortcut

    window = make_main_window()
    owners = defaultdict(list)
    for action in window.findChildren(QAction):
        for key in action.shortcuts():
            owners[key.toString()].append(action.text())
    for shortcut in window.findChildren(QShortcut):
        owners[shortcut.key().toString()].append("shortcut")
    assert len(owners) > 30  # the registry and every controller's keys were found
    assert {key: names for key, names in owners.items() if len(names) > 1} == {}
