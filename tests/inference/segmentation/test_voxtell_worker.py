"""VoxTell end to end through the real client and a real worker process, with a tiny,
randomly initialised VoxTell folder built here (`experiments.tiny_voxtell`: VoxTell's own
model class, a one-layer Qwen3 text encoder, no download).

The reference is what VoxTell itself does with the study's NIfTI file (its reader, predictor
and writer, as ``voxtell-predict`` runs them); the worker's mask, on BirdView's voxels, must
be that mask voxel for voxel. The sample CT is taken every 4th row and column (20 × 128 × 128)
so that the tiny network's one 24 × 192 × 192 patch covers it in seconds on a CPU.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("voxtell", reason="the voxtell package is not installed (extra: voxtell)")

from birdview.core.geometry import Plane, to_canonical  # noqa: E402
from birdview.core.io import load, scan  # noqa: E402
from birdview.core.resources import sample_ct_dir  # noqa: E402
from birdview.core.volume import Volume  # noqa: E402
from birdview.inference.client import InferenceClient  # noqa: E402
from birdview.inference.protocol import WorkerConfig, WorkerFailure  # noqa: E402
from birdview.inference.segmentation.protocol import (  # noqa: E402
    PropagateReply,
    SegmenterLoaded,
)
from birdview.inference.segmentation.voxtell import ras_affine  # noqa: E402
from experiments.tiny_voxtell import build_tiny_voxtell  # noqa: E402


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return build_tiny_voxtell(tmp_path_factory.mktemp("tiny_voxtell") / "voxtell_tiny", seed=0)


@pytest.fixture(scope="module")
def small_ct() -> Volume:
    ct = to_canonical(load(scan(sample_ct_dir()).entries[0]))
    sx, sy, sz = ct.spacing_mm
    return ct.with_changes(
        voxels=np.ascontiguousarray(ct.voxels[:, ::4, ::4]), spacing_mm=(sx * 4, sy * 4, sz)
    )


@pytest.fixture(scope="module")
def client():
    client = InferenceClient(timeout_s=300.0, load_timeout_s=300.0, start_timeout_s=60.0)
    client.start()
    yield client
    client.shutdown()


def _load(client: InferenceClient, folder: Path):
    config = WorkerConfig(str(folder), precision="auto", device="cpu", torch_threads=1)
    return client.load_segmenter(config).result(300)


def _use(client: InferenceClient, folder: Path) -> None:
    """Load ``folder`` unless it is the loaded segmenter already (a load takes seconds)."""
    current = client._last_segmenter_load
    if current is None or current.config.model_dir != str(folder) or not client.segmenter_loaded:
        assert isinstance(_load(client, folder), SegmenterLoaded)


def _assert_same_mask(actual: np.ndarray, expected: np.ndarray) -> None:
    """Equal but for voxels whose logit is within rounding of 0: two runs of one network on
    one input differ in a voxel or so in 100 000 (oneDNN's convolutions do not add in a
    fixed order); a mask flipped, shifted or on another axis differs in tens of percent."""
    assert actual.shape == expected.shape
    assert np.mean(actual != expected) < 1e-3, f"{np.sum(actual != expected)} voxels differ"


def _reference(folder: Path, volume: Volume, text: str, tmp_path: Path) -> np.ndarray:
    """VoxTell's own path on the volume's NIfTI file, read back on BirdView's (k, j, i)."""
    import nibabel as nib
    import torch
    from nnunetv2.imageio.nibabel_reader_writer import NibabelIOWithReorient
    from voxtell.inference.predictor import VoxTellPredictor

    image_file, mask_file = tmp_path / "ct.nii.gz", tmp_path / "mask.nii.gz"
    nib.save(nib.Nifti1Image(volume.voxels.transpose(2, 1, 0), ras_affine(volume)), image_file)
    io = NibabelIOWithReorient()
    image, props = io.read_images([str(image_file)])
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the worker runs it
    try:
        predictor = VoxTellPredictor(
            model_dir=str(folder),
            device=torch.device("cpu"),
            text_encoding_model=str(folder / "text_encoder"),
            use_precomputed_embeddings=False,
        )
        found = predictor.predict_single_image(image, [text])
    finally:
        torch.set_num_threads(threads)
    io.write_seg(found[0], str(mask_file), props)
    return np.asarray(nib.load(mask_file).dataobj).transpose(2, 1, 0) != 0


def test_the_worker_gives_the_mask_voxtell_gives_on_the_studys_nifti(
    client, tiny, small_ct, tmp_path
):
    loaded = _load(client, tiny)
    assert isinstance(loaded, SegmenterLoaded), loaded
    assert (loaded.engine, loaded.precision, loaded.device) == ("voxtell", "fp32", "cpu")
    assert loaded.memory_bytes > 1_000_000_000  # VoxTell's prompt decoder: ~340 M parameters
    assert len(loaded.checkpoint_sha256) == 64
    count = small_ct.shape[0]
    streamed: list = []
    reply = client.propagate(
        small_ct, first=0, last=count - 1, text="liver", on_slice=streamed.append
    ).result(300)
    assert isinstance(reply, PropagateReply), reply
    assert reply.method == "volume" and not reply.cancelled
    assert [s.slice_index for s in reply.slices] == list(range(count))
    assert len(streamed) == count
    mask = np.stack([s.mask.unpack() for s in reply.slices])
    expected = _reference(tiny, small_ct, "liver", tmp_path)
    assert 0.01 < expected.mean() < 0.99  # a mask with an inside and an outside
    _assert_same_mask(mask, expected)


def test_a_coronal_range_streams_the_same_mask_slice_by_slice(client, tiny, small_ct):
    _use(client, tiny)
    full = client.propagate(small_ct, first=0, last=19, text="liver").result(300)
    axial = np.stack([s.mask.unpack() for s in full.slices])
    part = client.propagate(small_ct, plane=Plane.CORONAL, first=30, last=33, text="liver").result(
        300
    )
    assert [s.slice_index for s in part.slices] == [30, 31, 32, 33]
    for piece in part.slices:  # coronal slices as shown: head up (k reversed)
        _assert_same_mask(piece.mask.unpack(), axial[::-1, piece.slice_index, :])


def test_voxtell_refuses_what_it_does_not_take(client, tiny, small_ct):
    from birdview.core.box import Box

    _use(client, tiny)
    failure = client.propagate(
        small_ct, first=0, last=3, box=Box(Plane.AXIAL, 0, 10, 10, 40, 40)
    ).result(60)
    assert isinstance(failure, WorkerFailure)
    assert "VoxTell (text → 3D) takes text prompts" in failure.message
    image = np.zeros((128, 128, 3), np.uint8)
    failure = client.segment(image, text="liver").result(60)
    assert isinstance(failure, WorkerFailure)
    assert "segments the whole volume" in failure.message


def test_incomplete_voxtell_folders_are_refused_in_plain_words(client, tiny, tmp_path):
    plans_only = tmp_path / "plans_only"
    plans_only.mkdir()
    shutil.copy(tiny / "plans.json", plans_only / "plans.json")
    failure = _load(client, plans_only)
    assert isinstance(failure, WorkerFailure) and failure.kind == "load"
    assert "looks like a VoxTell (text → 3D) folder but has no fold_0/checkpoint_final.pth" in (
        failure.message
    )
    no_encoder = tmp_path / "no_encoder"
    shutil.copytree(tiny, no_encoder, ignore=shutil.ignore_patterns("text_encoder"))
    failure = _load(client, no_encoder)
    assert isinstance(failure, WorkerFailure) and failure.kind == "load"
    assert "its text encoder is missing" in failure.message
    assert "Qwen3-Embedding-4B" in failure.message


def test_a_cancel_stops_voxtell_between_patches_with_no_mask(client, tiny, small_ct):
    import time

    _use(client, tiny)
    handle = client.propagate(small_ct, first=0, last=19, text="liver")
    time.sleep(1.0)  # inside the sliding window: one patch takes seconds on a CPU
    client.cancel(handle.request_id)
    reply = handle.result(300)
    assert isinstance(reply, PropagateReply), reply
    assert reply.cancelled and reply.method == "volume" and reply.slices == ()


def test_voxtell_reports_each_patch_in_order_before_the_mask(client, tiny, small_ct):
    """Columns taken every 2nd instead of 4th (20 × 128 × 256): the rows fit one 192-voxel
    patch, the 256 columns need two at VoxTell's half-patch step, so two patches."""
    _use(client, tiny)
    ct = to_canonical(load(scan(sample_ct_dir()).entries[0]))
    sx, sy, sz = ct.spacing_mm
    wide = ct.with_changes(
        voxels=np.ascontiguousarray(ct.voxels[:, ::4, ::2]), spacing_mm=(sx * 2, sy * 4, sz)
    )
    events: list = []
    reply = client.propagate(
        wide,
        first=0,
        last=wide.shape[0] - 1,
        text="liver",
        on_progress=lambda done, total: events.append(("patch", done, total)),
        on_slice=lambda piece: events.append(("slice", piece.slice_index)),
    ).result(300)
    assert isinstance(reply, PropagateReply) and not reply.cancelled, reply
    assert events[:2] == [("patch", 1, 2), ("patch", 2, 2)]
    assert events[2:] == [("slice", s) for s in range(wide.shape[0])]
