"""Box-prompted segmentation and propagation through the real client and a real worker
process, with tiny random SAM, SAM2 and SAM2-video checkpoints built here (no download).

The sample CT is cropped to 400 × 512 so that a mask put on the wrong axis or the wrong
slice cannot pass for the right one.
"""

from __future__ import annotations

import os
import re
import signal
import threading
from pathlib import Path

import numpy as np
import pytest

from birdview.core.box import Box
from birdview.core.geometry import Plane, to_canonical
from birdview.core.io import load, scan
from birdview.core.masks import PackedMask, measure, put_slice
from birdview.core.model_input import render_for_model, volume_intensity_range
from birdview.core.resources import sample_ct_dir
from birdview.core.volume import Volume
from birdview.inference.client import InferenceClient
from birdview.inference.errors import WorkerCrashedError
from birdview.inference.protocol import WorkerConfig, WorkerFailure
from birdview.inference.segmentation.protocol import (
    PropagateReply,
    SegmenterLoaded,
    SegmentReply,
)
from tests.inference.tiny_sam import BOX_KINDS, KINDS, build_tiny_sam

LIVER = 5  # TotalSegmentator's value in the bundled label map
BOX = (150.0, 120.0, 330.0, 260.0)  # on the cropped slices (x1, y1, x2, y2)
START = 8


@pytest.fixture(scope="module")
def tiny_sams(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tiny_sam")
    return {kind: build_tiny_sam(kind, root / kind, seed=0) for kind in KINDS}


@pytest.fixture(scope="module")
def ct() -> Volume:
    volume = to_canonical(load(scan(sample_ct_dir()).entries[0]))
    return volume.with_changes(voxels=volume.voxels[:, 40:440, :])


@pytest.fixture(scope="module")
def intensity(ct) -> tuple[float, float]:
    return volume_intensity_range(ct)


@pytest.fixture(scope="module")
def client():
    client = InferenceClient(timeout_s=60.0, load_timeout_s=120.0, start_timeout_s=60.0)
    client.start()
    yield client
    client.shutdown()


def _use(client: InferenceClient, folder: Path) -> SegmenterLoaded:
    current = client._last_segmenter_load
    if (
        current is None
        or current.config.model_dir != str(folder)
        or client.segmenter_loaded is None
    ):
        config = WorkerConfig(str(folder), precision="fp32", device="cpu", torch_threads=1)
        loaded = client.load_segmenter(config).result(120)
        assert isinstance(loaded, SegmenterLoaded), loaded
    return client.segmenter_loaded


def _box(index: int = START, edges=BOX) -> Box:
    return Box(Plane.AXIAL, index, *edges, label="liver")


def _reference_mask(kind: str, folder: Path, image: np.ndarray, box) -> np.ndarray:
    """The checkpoint's own mask, straight from transformers in this process."""
    import torch
    import transformers as tf

    names = {"sam": ("SamProcessor", "SamModel"), "sam2": ("Sam2Processor", "Sam2Model")}
    processor_class, model_class = (getattr(tf, n) for n in names[kind])
    processor = processor_class.from_pretrained(folder)
    model = model_class.from_pretrained(folder).eval()
    inputs = processor(images=image, input_boxes=[[list(box)]], return_tensors="pt")
    with torch.inference_mode():
        out = model(
            pixel_values=inputs["pixel_values"],
            input_boxes=inputs["input_boxes"],
            multimask_output=False,
        )
    sizes = [inputs["original_sizes"]]
    if kind == "sam":
        sizes.append(inputs["reshaped_input_sizes"])
        masks = processor.image_processor.post_process_masks(out.pred_masks, *sizes)
    else:
        masks = processor.post_process_masks(out.pred_masks, *sizes)
    return np.asarray(masks[0][0, 0], dtype=bool)


@pytest.mark.parametrize("kind", ["sam", "sam2"])
def test_segment_returns_the_models_mask_for_that_slice(client, tiny_sams, ct, intensity, kind):
    loaded = _use(client, tiny_sams[kind])
    assert (loaded.engine, loaded.model_type, loaded.precision, loaded.device) == (
        kind,
        kind,
        "fp32",
        "cpu",
    )
    image = render_for_model(ct, Plane.AXIAL, START, intensity_range=intensity)
    reply = client.segment(image, _box()).result(60)
    assert isinstance(reply, SegmentReply), reply
    mask = reply.mask.unpack()
    assert mask.shape == (400, 512) and len(reply.mask.bits) == 400 * 512 // 8
    expected = _reference_mask(kind, tiny_sams[kind], image, BOX)
    assert 0 < expected.sum() < expected.size  # a mask with an edge, so a shift would show
    np.testing.assert_array_equal(mask, expected)
    other = render_for_model(ct, Plane.AXIAL, START + 5, intensity_range=intensity)
    assert not np.array_equal(_reference_mask(kind, tiny_sams[kind], other, BOX), mask)


@pytest.mark.parametrize("kind", BOX_KINDS)
def test_propagate_streams_one_mask_per_slice_of_the_range(client, tiny_sams, ct, intensity, kind):
    _use(client, tiny_sams[kind])
    streamed = []
    handle = client.propagate(
        ct, box=_box(), first=3, last=15, intensity_range=intensity, on_slice=streamed.append
    )
    reply = handle.result(120)
    assert isinstance(reply, PropagateReply), reply
    assert reply.method == ("video" if kind == "sam2_video" else "chain")
    assert not reply.cancelled
    assert [s.slice_index for s in reply.slices] == list(range(3, 16))
    assert sorted(s.slice_index for s in streamed) == list(range(3, 16))
    # Streamed outward from the start: the start first, then forward, then backward.
    assert [s.slice_index for s in streamed] == list(range(START, 16)) + list(
        range(START - 1, 2, -1)
    )
    masks = {s.slice_index: s.mask.unpack() for s in reply.slices}
    assert all(m.shape == (400, 512) for m in masks.values())
    # The start slice is the box's own mask, as one segment call gives it.
    image = render_for_model(ct, Plane.AXIAL, START, intensity_range=intensity)
    single = client.segment(image, _box()).result(60)
    np.testing.assert_array_equal(masks[START], single.mask.unpack())
    # Assembled on the volume's grid, the masks measure.
    volume_mask = np.zeros(ct.shape, bool)
    for index, mask in masks.items():
        put_slice(volume_mask, Plane.AXIAL, index, mask)
    found = measure(volume_mask, ct)
    assert found.voxels == sum(int(m.sum()) for m in masks.values())
    assert not volume_mask[:3].any() and not volume_mask[16:].any()


def _sam3_reference(folder: Path, image: np.ndarray, text: str, min_score: float) -> np.ndarray:
    """SAM3's instances for ``text`` straight from transformers, united."""
    import torch
    from transformers import Sam3Model, Sam3Processor

    processor = Sam3Processor.from_pretrained(folder)
    model = Sam3Model.from_pretrained(folder).eval()
    inputs = processor(images=image, text=text, return_tensors="pt")
    with torch.inference_mode():
        out = model(**inputs)
    found = processor.post_process_instance_segmentation(
        out, threshold=min_score, target_sizes=inputs["original_sizes"].tolist()
    )[0]
    return np.asarray(found["masks"], dtype=bool).any(axis=0)


def test_sam3_segments_and_propagates_what_the_text_names(client, tiny_sams, ct, intensity):
    loaded = _use(client, tiny_sams["sam3"])
    assert loaded.engine == "sam3"
    image = render_for_model(ct, Plane.AXIAL, START, intensity_range=intensity)
    reply = client.segment(image, text="liver", min_score=0.25).result(60)
    assert isinstance(reply, SegmentReply), reply
    mask = reply.mask.unpack()
    expected = _sam3_reference(tiny_sams["sam3"], image, "liver", 0.25)
    assert mask.shape == (400, 512) and 0 < expected.sum() < expected.size
    np.testing.assert_array_equal(mask, expected)
    assert 0.25 <= reply.score <= 1.0
    done = client.propagate(
        ct, text="liver", min_score=0.25, first=6, last=9, intensity_range=intensity
    ).result(120)
    assert isinstance(done, PropagateReply) and done.method == "text", done
    assert [s.slice_index for s in done.slices] == [6, 7, 8, 9]
    np.testing.assert_array_equal(done.slices[2].mask.unpack(), mask)  # slice 8 = START


def test_prompts_an_engine_does_not_take_are_refused(client, tiny_sams, ct):
    image = np.zeros((400, 512, 3), np.uint8)
    _use(client, tiny_sams["sam3"])
    failure = client.segment(image, _box()).result(60)
    assert failure.kind == "bad_request"
    assert "a box prompt as SAM3 (text prompts) takes text prompts" in failure.message
    failure = client.segment(image, text="   ").result(60)
    assert "the text prompt is empty" in failure.message
    failure = client.segment(image, text="liver", min_score=2).result(60)
    assert "min_score 2 is not in 0..1" in failure.message
    failure = client.segment(image, text="x" * 300).result(60)
    assert "has 300 characters; at most 200" in failure.message
    _use(client, tiny_sams["sam"])
    failure = client.segment(image, text="liver").result(60)
    assert "a text prompt as SAM / MedSAM takes box prompts" in failure.message
    failure = client.propagate(ct, text="liver", first=0, last=3).result(60)
    assert "a text prompt as SAM / MedSAM takes box prompts" in failure.message


def test_propagate_on_a_coronal_plane_lands_on_coronal_slices(client, tiny_sams, ct, intensity):
    _use(client, tiny_sams["sam"])
    box = Box(Plane.CORONAL, 200, 100.0, 4.0, 400.0, 16.0)
    reply = client.propagate(
        ct, plane=Plane.CORONAL, box=box, first=199, last=201, intensity_range=intensity
    ).result(120)
    assert isinstance(reply, PropagateReply), reply
    masks = {s.slice_index: s.mask.unpack() for s in reply.slices}
    assert sorted(masks) == [199, 200, 201]
    assert all(m.shape == (20, 512) for m in masks.values())  # slices × columns
    volume_mask = np.zeros(ct.shape, bool)
    for index, mask in masks.items():
        put_slice(volume_mask, Plane.CORONAL, index, mask)
    assert not np.delete(volume_mask, [199, 200, 201], axis=1).any()


def test_propagate_from_sweep_boxes_segments_each_slice_with_its_boxes(
    client, tiny_sams, ct, intensity
):
    _use(client, tiny_sams["sam"])
    boxes = [_box(4), _box(5, (40.0, 40.0, 200.0, 180.0)), _box(5), _box(6)]
    reply = client.propagate(ct, boxes=boxes, first=3, last=7, intensity_range=intensity).result(
        120
    )
    assert isinstance(reply, PropagateReply), reply
    assert reply.method == "boxes"
    masks = {s.slice_index: s.mask.unpack() for s in reply.slices}
    assert sorted(masks) == [3, 4, 5, 6, 7]
    assert not masks[3].any() and not masks[7].any()  # no box there
    image = render_for_model(ct, Plane.AXIAL, 5, intensity_range=intensity)
    one, two = (client.segment(image, b).result(60).mask.unpack() for b in boxes[1:3])
    np.testing.assert_array_equal(masks[5], one | two)


def test_propagate_from_a_drawn_mask_keeps_it_on_its_slice(client, tiny_sams, ct, intensity):
    _use(client, tiny_sams["sam"])
    labels = to_canonical(load(scan(sample_ct_dir().parent / "totalseg_ct_labels").entries[0]))
    liver = np.asarray(labels.voxels[:, 40:440, :]) == LIVER
    start = int(np.argmax(liver.sum(axis=(1, 2))))
    reply = client.propagate(
        ct,
        mask=liver[start],
        start=start,
        first=start - 2,
        last=start + 2,
        intensity_range=intensity,
    ).result(120)
    assert isinstance(reply, PropagateReply), reply
    masks = {s.slice_index: s.mask.unpack() for s in reply.slices}
    assert sorted(masks) == list(range(start - 2, start + 3))
    np.testing.assert_array_equal(masks[start], liver[start])


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"box": _box(START, (600.0, 500.0, 700.0, 600.0))}, "the box is outside the slice"),
        ({"box": _box(), "mask": np.ones((400, 512), bool)}, "exactly one prompt"),
        ({}, "exactly one prompt"),
        ({"box": _box(), "last": 25}, r"slices 3\.\.25 as the volume has slices 0\.\.19"),
        ({"mask": np.zeros((400, 512), bool), "start": 5}, "Unable to propagate an empty mask"),
        ({"mask": np.ones((512, 512), bool), "start": 5}, r"a \(512, 512\) mask on \(400, 512\)"),
        ({"box": _box(2)}, "outside 3..15"),
        ({"box": _box(), "start": 9}, "not the start"),
        ({"boxes": [_box(1)]}, r"no box lies on slices 3\.\.15"),
    ],
)
def test_bad_propagations_fail_with_a_clear_message(client, tiny_sams, ct, fields, message):
    _use(client, tiny_sams["sam"])
    fields = {"first": 3, "last": 15, "intensity_range": (-1000.0, 1000.0), **fields}
    failure = client.propagate(ct, **fields).result(60)
    assert isinstance(failure, WorkerFailure), failure
    assert failure.kind == "bad_request"
    assert re.search(message, failure.message), failure.message


def test_bad_segment_requests_fail_with_a_clear_message(client, tiny_sams, ct):
    _use(client, tiny_sams["sam"])
    grey = np.zeros((400, 512), np.uint8)
    failure = client.segment(grey, _box()).result(60)
    assert failure.kind == "bad_request" and "expected (rows, cols, 3)" in failure.message
    floats = np.zeros((400, 512, 3), np.float32)
    failure = client.segment(floats, _box()).result(60)
    assert failure.kind == "bad_request" and "float32; expected uint8" in failure.message
    tiny = np.zeros((40, 40, 3), np.uint8)
    failure = client.segment(tiny, _box()).result(60)
    assert failure.kind == "bad_request" and "outside the slice" in failure.message


def test_a_worker_without_a_segmenter_and_a_wrong_checkpoint_say_so(tmp_path):
    from safetensors.numpy import save_file

    not_sam = tmp_path / "not_sam"
    not_sam.mkdir()
    (not_sam / "config.json").write_text('{"model_type": "bert"}')
    save_file({"w": np.zeros(2, np.float32)}, str(not_sam / "model.safetensors"))
    with InferenceClient(timeout_s=60.0, start_timeout_s=60.0) as fresh:
        image = np.zeros((64, 64, 3), np.uint8)
        failure = fresh.segment(image, Box(Plane.AXIAL, 0, 1, 1, 9, 9)).result(60)
        assert failure.kind == "bad_request"
        assert "no segmentation model is loaded" in failure.message
        failure = fresh.load_segmenter(WorkerConfig(str(not_sam), device="cpu")).result(60)
        assert failure.kind == "load"
        assert (
            str(not_sam) in failure.message
            and "'bert' is not a segmentation model" in failure.message
        )
        failure = fresh.load_segmenter(
            WorkerConfig(str(tmp_path / "missing"), device="cpu")
        ).result(60)
        assert failure.kind == "load" and "does not exist" in failure.message


def test_a_killed_worker_fails_the_propagation_then_comes_back_with_its_segmenter(
    client, tiny_sams, ct, intensity
):
    _use(client, tiny_sams["sam2_video"])
    image = render_for_model(ct, Plane.AXIAL, START, intensity_range=intensity)
    before = client.segment(image, _box()).result(60).mask.unpack()
    old_pid, restarts = client.pid, client.restarts
    killed = threading.Event()

    def kill_once(_slice) -> None:
        if not killed.is_set():
            killed.set()
            os.kill(old_pid, signal.SIGKILL)

    failure = client.propagate(
        ct, box=_box(), first=0, last=19, intensity_range=intensity, on_slice=kill_once
    ).result(120)
    assert killed.is_set()
    assert isinstance(failure, WorkerFailure) and failure.kind == "crashed", failure
    assert isinstance(failure.to_exception(), WorkerCrashedError)
    again = client.segment(image, _box()).result(120)  # waits for the new worker's reload
    assert isinstance(again, SegmentReply), again
    np.testing.assert_array_equal(again.mask.unpack(), before)  # the same model again
    assert client.pid != old_pid and client.restarts == restarts + 1
    assert client.segmenter_loaded.engine == "sam2_video"
    assert client.status().segmenter == "sam2_video"


def test_a_cancelled_propagation_ends_early_with_what_it_had(client, tiny_sams, ct, intensity):
    _use(client, tiny_sams["sam"])
    handle_box: list = []

    def cancel_first(_slice) -> None:
        if handle_box:  # the first slice after the handle exists
            client.cancel(handle_box.pop().request_id)

    handle = client.propagate(
        ct, box=_box(), first=0, last=19, intensity_range=intensity, on_slice=cancel_first
    )
    handle_box.append(handle)
    reply = handle.result(120)
    assert isinstance(reply, PropagateReply), reply
    assert reply.cancelled and 1 <= len(reply.slices) < 20
    assert all(isinstance(s.mask, PackedMask) for s in reply.slices)
