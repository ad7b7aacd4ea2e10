"""Text → 3D with VoxTell in the real window, with the real worker and a tiny random VoxTell
folder (`experiments.tiny_voxtell`): the text prompt of the Masks dock runs VoxTell on the
whole study, the mask lands in the study's mask set as one undo step, and the dock shows its
numbers like any other mask's.

The study is the sample CT taken every 4th row and column, written as NIfTI and opened like
any file, so that the tiny network's one patch covers it in seconds on a CPU.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("voxtell", reason="the voxtell package is not installed (extra: voxtell)")

from birdview.core.geometry import to_canonical  # noqa: E402
from birdview.core.io import load, scan  # noqa: E402
from birdview.core.masks import voxel_volume_ml  # noqa: E402
from birdview.core.resources import sample_ct_dir  # noqa: E402
from birdview.inference.segmentation.voxtell import ras_affine  # noqa: E402
from experiments.tiny_voxtell import build_tiny_voxtell  # noqa: E402
from tests.ui.segment_window import open_segment_window, wait_for  # noqa: E402


def _small_ct_file(folder) -> str:
    import nibabel as nib

    ct = to_canonical(load(scan(sample_ct_dir()).entries[0]))
    sx, sy, sz = ct.spacing_mm
    small = ct.with_changes(voxels=ct.voxels[:, ::4, ::4], spacing_mm=(sx * 4, sy * 4, sz))
    path = folder / "ct_small.nii.gz"
    nib.save(nib.Nifti1Image(small.voxels.transpose(2, 1, 0), ras_affine(small)), path)
    return str(path)


@pytest.fixture(scope="module")
def window(qapp, tmp_path_factory):
    folder = tmp_path_factory.mktemp("segment_voxtell")
    window = open_segment_window(
        folder, build_tiny_voxtell(folder / "voxtell_tiny", seed=0), _small_ct_file(folder)
    )
    yield window
    window.close()


def test_a_text_prompt_runs_voxtell_and_its_3d_mask_is_one_undo_step(window):
    volume, masks, panel = window.session.volume, window.masks.masks, window.mask_panel
    masks.reset(volume.identity, volume.shape)
    assert window.segment.text_engine()  # the chosen folder is VoxTell's, not loaded yet
    panel.text_edit.setText("liver")
    panel._on_text()
    assert window.segment.busy and panel.text_note.text() == ""
    wait_for(lambda: not window.segment.busy, 300)
    reply = window.segment.last_reply
    assert reply.method == "volume" and not reply.cancelled, reply
    assert len(masks) == 1
    entry = masks.entries[0]
    assert (entry.name, entry.source) == ("liver", "text prompt")
    expected = np.stack([s.mask.unpack() for s in reply.slices])
    np.testing.assert_array_equal(entry.data != 0, expected)
    assert 0 < entry.voxels < expected.size
    # The dock's numbers, as for any mask: the volume is the voxel count times one voxel.
    volume_ml = f"{entry.voxels * voxel_volume_ml(volume):.2f}"
    wait_for(lambda: panel.row_text(0)[2] == volume_ml, 60)
    assert "HU" in panel.row_text(0)[4]
    # One undo step takes the whole 3D mask away, the mask with it.
    assert masks.undo()
    assert len(masks) == 0
    assert masks.redo() and masks.entries[0].voxels == entry.voxels


def test_the_dock_bar_counts_voxtells_patches_and_the_status_says_what_ran(window):
    volume, masks, panel = window.session.volume, window.masks.masks, window.mask_panel
    masks.reset(volume.identity, volume.shape)
    seen: list[tuple[int, int, str]] = []  # the bar after each progress (the panel's slot ran)

    def record(*_) -> None:
        seen.append((panel.progress.value(), panel.progress.maximum(), panel.progress.text()))

    window.segment.progress.connect(record)
    try:
        panel.text_edit.setText("liver")
        panel._on_text()
        wait_for(lambda: not window.segment.busy, 300)
    finally:
        window.segment.progress.disconnect(record)
    assert window.segment.last_reply.method == "volume"
    # The small CT is one patch of the tiny network: the bar starts at 0 and ends at 1 of 1
    # patch; the slices that follow at once do not move it back.
    slices = volume.shape[0]
    assert seen == [(0, slices, f"0 / {slices} slices"), (1, 1, "1 / 1 patches")]
    entry = masks.entries[0]
    volume_ml = entry.voxels * voxel_volume_ml(volume)
    message = window.status.currentMessage()
    assert message == f"VoxTell done: liver {volume_ml:.1f} mL"
