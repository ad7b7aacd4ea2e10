"""The main window's feature groups that need several of its parts: built and wired here so
that `birdview.ui.main_window` stays a list of what the window has. The window is typed as
QMainWindow: importing MainWindow here, even for type checking, would tie the two modules in a
cycle.

Each function takes the window after the parts it names exist, builds one feature's controls,
places its dock and menu entries, and sets the window attributes tests and other features use.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDockWidget, QMainWindow, QMenu, QWidget

from birdview.ui.annotation_keys import KeyImageControls
from birdview.ui.mask_compare_view import MaskCompare
from birdview.ui.mask_controls import MaskControls
from birdview.ui.mask_panel import MaskPanel
from birdview.ui.pacs_controls import PacsControls
from birdview.ui.segment_controls import SegmentControls

__all__ = ["add_dock", "add_key_images", "add_masks", "add_pacs"]


def add_dock(
    window: QMainWindow, title: str, name: str, widget: QWidget, area: Qt.DockWidgetArea
) -> QDockWidget:
    dock = QDockWidget(title, window)
    dock.setObjectName(name)  # saveState needs names
    dock.setWidget(widget)
    window.addDockWidget(area, dock)
    return dock


def add_key_images(window: QMainWindow) -> None:
    """Key images (marked slices), exported with the SR: needs measure, exporter, reporter;
    and the slab the views show, for the exports."""
    window.key_images = KeyImageControls(
        window,
        window.session,
        window.assistant,
        window.view_layout.all_views(),
        window.controller.session_dir,
        main_view=window.view_layout.main_view,
        measurements=lambda: window.measure.measurements.items,
        anonymise=window.exporter.anonymised,
        report_error=window.reporter.report,
    )
    # Exports give ROI statistics over the thick slab the views show, as on screen (the main
    # view's: every view shows the same slab).
    window.exporter.slab = lambda: window.view_layout.main_view.slab


def add_pacs(window: QMainWindow) -> None:
    """Query/retrieve and send to PACS, in the File menu before Recent studies."""
    window.pacs = PacsControls(
        window,
        window.session,
        window.assistant,
        window.open_path,
        measurements=lambda: window.measure.measurements.items,
        key_images=lambda: window.key_images.keys.items,
        label_map=lambda: window.labels.overlay.label_map,
        masks=lambda: window.masks.masks,
        report_error=window.reporter.report,
    )
    bar = window.menuBar()
    window.pacs.add_to_menu(bar.file_menu, bar.recent_menu.menuAction())


def add_masks(window: QMainWindow, measure_menu: QMenu) -> None:
    """Masks, segmentation and mask comparison: their controls in the Measure menu, their
    panel in a dock tabbed with the labels' legend, and the tool actions deciding who gets
    Ctrl+Z."""
    tools = window.action_registry.tool_actions
    window.masks = MaskControls(
        window,
        window.session,
        window.view_layout.all_views(),
        window.controller.session_dir,
        (window.measure.undo_action, window.measure.redo_action),
        report=lambda text: window.status.showMessage(text, 8000),
        report_error=window.reporter.report,
    )
    window.segment = SegmentControls(
        window,
        window.session,
        window.assistant,
        window.bridge,
        window.masks.masks,
        window.settings,
        report=lambda text: window.status.showMessage(text, 15000),
        report_error=window.reporter.report,
    )
    window.segment.add_to_menu(measure_menu)
    window.masks.add_to_menu(measure_menu)
    window.mask_panel = MaskPanel(window.session, window.masks, window.segment, tools)
    window.masks_dock = add_dock(
        window, "Masks", "masks_dock", window.mask_panel, Qt.DockWidgetArea.LeftDockWidgetArea
    )
    window.tabifyDockWidget(window.labels_dock, window.masks_dock)  # one column, two tabs
    window.labels_dock.raise_()
    for tool, action in tools.items():  # the active tool decides who gets Ctrl+Z
        action.toggled.connect(lambda on, t=tool: on and window.masks.set_tool(t))
    window.exporter.masks = window.masks.masks  # Export DICOM SR writes SEG + NIfTI with masks
    window.mask_compare = MaskCompare(
        window,
        window.session,
        window.masks.masks,
        window.labels.overlay,
        window.assistant,
        window.labels.legend,
    )
    measure_menu.addAction(window.mask_compare.action)
