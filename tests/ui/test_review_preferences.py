"""The cine frame rate and the thick slab are the reader's preferences: chosen in one window's
tool bar, they are what the next window (the next start of BirdView) begins with, whatever
study it opens; they are not kept per study."""

from __future__ import annotations

from birdview.core.resources import sample_ct_dir
from birdview.core.slab import Slab
from tests.ui.helpers import open_and_wait


def test_frame_rate_and_slab_come_back_at_the_next_start(make_main_window, qtbot) -> None:
    first = make_main_window()
    assert first.review.cine.fps == 10 and first.review.slab.slab == Slab()
    first.review.cine.fps_box.setValue(24)  # as typed in the tool bar
    slab = first.review.slab
    slab.mode_box.setCurrentIndex(slab.mode_box.findData("mip"))
    slab.thickness_box.setValue(15.0)
    first.close()

    second = make_main_window()
    assert second.review.cine.fps == 24
    assert second.review.cine._timer.interval() == round(1000 / 24)
    assert second.review.slab.slab == Slab("mip", 15.0)
    assert second.review.slab.thickness_box.isEnabled()
    open_and_wait(qtbot, second, sample_ct_dir())
    view = second.view_layout.main_view
    assert view.slab == Slab("mip", 15.0) and "MIP 15.0 mm" in view.overlay().bottom_left
