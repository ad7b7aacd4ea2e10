"""In the real window on the sample CT: an ellipse ROI drawn with the mouse on a 10 mm MIP is
exported as the reader saw it — the JSON's text is the label the view draws (the slab named,
the projection's statistics) with the slab's slices, the PNG shows the projection the view
shows, and the SR (dsrdump) keeps the slice's statistics and adds the MIP's, said so."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image
from PySide6.QtCore import Qt

from birdview.core import geometry
from birdview.core.display import apply_window
from birdview.core.geometry import Plane
from birdview.core.measure import roi_mask
from birdview.core.resources import sample_ct_dir
from tests.core.test_exports import dsrdump
from tests.ui.helpers import drag, open_and_wait
from tests.ui.test_export_actions import Dialog
from tests.ui.test_slab_view import view_lines


def test_exports_of_an_roi_on_a_mip_say_what_the_view_showed(make_main_window, qtbot, tmp_path):
    window = make_main_window("1x1")
    open_and_wait(qtbot, window, sample_ct_dir())
    view, volume = window.view_layout.main_view, window.session.volume
    window.review.slab.set_slab("mip", 10.0)
    window.action_registry.tool_actions["ellipse"].trigger()
    cx, cy = (int(v) for v in view.viewport_to_image(view.viewport().rect().center()))
    start, end = (
        view.image_to_viewport(x, y).toPoint() for x, y in ((cx - 40, cy - 30), (cx + 30, cy + 30))
    )
    drag(view.viewport(), start, end, Qt.MouseButton.LeftButton)
    (roi,) = window.measure.measurements.items
    shown = view_lines(window, roi)
    assert "MIP 10.0 mm" in shown
    window.exporter.ask_path = Dialog(tmp_path)

    found = window.exporter.json()
    assert found
    (item,) = json.loads(Path(found).read_text())["measurements"]["items"]
    assert item["text"] == shown  # export and screen agree
    k = roi.slice_index
    assert (item["slab"]["mode"], item["slab"]["first_slice_index"]) == ("mip", k - 2)
    assert item["slab"]["last_slice_index"] == k + 2
    mip = np.stack(
        [geometry.extract_slice(volume, Plane.AXIAL, n) for n in range(k - 2, k + 3)]
    ).max(axis=0)
    values = mip.astype(np.float64)[roi_mask(roi, mip.shape)]
    assert item["values"]["maximum"]["value"] == values.max()

    png = window.exporter.png()
    exported = np.asarray(Image.open(png).convert("L")).astype(int)
    assert exported.shape == view._buffer.shape  # the 512-pixel CT exports 1:1
    mip_grey = view._buffer.astype(int)  # the grey levels the view drew: the projection
    slice_grey = apply_window(
        geometry.extract_slice(volume, Plane.AXIAL, k), window.session.window
    ).astype(int)
    where = np.abs(mip_grey - slice_grey) > 20  # where the MIP is not the slice
    assert where.sum() > 1000
    as_mip = (np.abs(exported - mip_grey)[where] <= 1).mean()
    as_slice = (np.abs(exported - slice_grey)[where] <= 1).mean()
    assert as_mip > 0.9 and as_slice < 0.05, (as_mip, as_slice)  # marks and text cover a few

    dump = dsrdump(window.exporter.dicom_sr())
    assert "Maximum intensity projection" in dump
    assert "On screen the ROI statistics were taken on the MIP 10.0 mm over" in dump
