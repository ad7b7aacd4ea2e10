"""Decoding a series on a thread pool: same voxels and same errors as on one thread."""

from __future__ import annotations

import os
import shutil
import threading
import time
import warnings

import numpy as np
import pydicom
import pytest

from birdview.core.errors import LoadCancelled, VolumeReadError
from birdview.core.io import _dicom_threads, dicom
from birdview.core.io._dicom_pixels import decode_file, decodes_in_parallel
from birdview.core.io.dicom import load_dicom, scan_dicom
from tests.core.dicom_files import DATA_STORE, PYDICOM_FILES, TOTALSEG, files_in, only_entry

J2K = pydicom.uid.JPEG2000Lossless
needs_openjpeg = pytest.mark.skipif(
    not decodes_in_parallel(J2K), reason="no OpenJPEG library to decode on threads"
)


def _load_with(entry, monkeypatch, workers: int):
    monkeypatch.setattr(dicom, "worker_count", lambda tasks: min(tasks, workers))
    return load_dicom(entry)


def _no_decode_threads() -> bool:
    return not any(t.name.startswith("birdview-decode") for t in threading.enumerate())


@needs_openjpeg
def test_a_compressed_series_decodes_to_the_same_voxels_on_threads(monkeypatch):
    entry = only_entry(files_in(TOTALSEG))
    assert set(entry.reader_data.transfer_syntaxes) == {J2K}
    used = []
    real_decode_file = dicom.decode_file

    def spy(*args, **kwargs):
        used.append(kwargs.get("threaded", False))
        return real_decode_file(*args, **kwargs)

    monkeypatch.setattr(dicom, "decode_file", spy)
    one = _load_with(entry, monkeypatch, 1)  # gdcm or pylibjpeg, file by file
    assert used == [False] * 20
    used.clear()
    pooled = _load_with(entry, monkeypatch, 4)  # OpenJPEG through ctypes, 4 files at once
    assert used == [True] * 20
    assert pooled.voxels.dtype == one.voxels.dtype == np.int16
    assert np.array_equal(pooled.voxels, one.voxels)
    assert pooled.window == one.window
    assert _no_decode_threads()


@needs_openjpeg
@pytest.mark.parametrize("workers", [1, 4])
def test_a_damaged_frame_in_the_middle_names_its_file(tmp_path, monkeypatch, workers):
    for path in files_in(TOTALSEG):
        shutil.copy(path, tmp_path)
    entry = only_entry(files_in(str(tmp_path)))
    victim = entry.reader_data.sources[10].path
    data = bytearray(open(victim, "rb").read())
    start = data.find(b"\xff\x4f\xff\x51")  # SOC, SIZ: the size check still passes
    start += 4 + int.from_bytes(data[start + 4 : start + 6], "big")
    data[start : start + 64] = bytes(64)  # the coding style and quantisation are gone
    open(victim, "wb").write(data)
    with pytest.raises(VolumeReadError) as caught:
        _load_with(entry, monkeypatch, workers)
    assert caught.value.path == victim
    assert str(caught.value).startswith(f"Unable to read {victim!r} as its pixel data could not")
    assert _no_decode_threads()


@needs_openjpeg
def test_cancelling_a_pooled_load_stops_its_threads(monkeypatch):
    entry = only_entry(files_in(TOTALSEG))
    calls = []

    def cancel() -> bool:
        calls.append(threading.current_thread().name)
        return len(calls) > 3

    monkeypatch.setattr(dicom, "worker_count", lambda tasks: 4)
    with pytest.raises(LoadCancelled):
        load_dicom(entry, cancel=cancel)
    assert _no_decode_threads()


def _j2k_corpus() -> list[str]:
    paths = []
    for root in (PYDICOM_FILES, DATA_STORE):
        for name in sorted(os.listdir(root)):
            path = os.path.join(root, name)
            try:
                with warnings.catch_warnings():  # pydicom's complaints about odd files
                    warnings.simplefilter("ignore")
                    ds = pydicom.dcmread(path, stop_before_pixels=True, force=True)
                meta = ds.file_meta
            except Exception:
                continue
            if meta.get("TransferSyntaxUID") in pydicom.uid.JPEG2000TransferSyntaxes:
                paths.append(path)
    return paths


@needs_openjpeg
@pytest.mark.parametrize("path", _j2k_corpus(), ids=os.path.basename)
def test_each_jpeg_2000_file_decodes_or_fails_alike_on_threads(path):
    """pydicom's JPEG 2000 files (colour, signed, odd precisions, damaged): the threaded
    plugin gives the same values, or hands over to the others and so the same error."""
    entries, problems = scan_dicom([path])
    if problems:
        pytest.skip("not a readable image")
    plan = entries[0].reader_data
    frames = list(dict.fromkeys(source.frame for source in plan.sources))
    args = (path, frames, plan, plan.transfer_syntaxes[0], plan.pixel_offsets[0])
    outcomes = []
    for threaded in (False, True):
        try:
            outcomes.append([item.array for _, item in decode_file(*args, threaded=threaded)])
        except VolumeReadError as exc:
            outcomes.append(str(exc))
    one, pooled = outcomes
    if isinstance(one, str) or isinstance(pooled, str):
        assert pooled == one
        return
    assert len(pooled) == len(one)
    for a, b in zip(one, pooled, strict=True):
        assert a.dtype == b.dtype and a.shape == b.shape
        # Lossy JPEG 2000 may round differently between OpenJPEG builds (gdcm bundles its
        # own); lossless must be exact.
        if plan.transfer_syntaxes[0] == J2K:
            assert np.array_equal(a, b)
        else:
            assert np.abs(a.astype(np.int64) - b.astype(np.int64)).max() <= 1


# -- the pool itself -------------------------------------------------------------------------


def test_results_come_in_task_order_whatever_order_they_finish_in():
    def slow_first(n: int) -> int:
        time.sleep(0.05 if n == 0 else 0.0)
        return n * n

    assert list(_dicom_threads.in_order(slow_first, range(10), 3)) == [n * n for n in range(10)]


def test_a_task_error_comes_at_its_turn_and_stops_the_rest():
    started = []

    def work(n: int) -> int:
        started.append(n)
        if n == 2:
            raise VolumeReadError(f"file{n}", "it is damaged")
        time.sleep(0.01)
        return n

    got = []
    with pytest.raises(VolumeReadError, match="'file2' as it is damaged"):
        for result in _dicom_threads.in_order(work, range(100), 2):
            got.append(result)
    assert got == [0, 1]
    assert len(started) <= 2 + 2 * 2 + 1  # the look-ahead bound, not all 100
    assert _no_decode_threads()


def test_look_ahead_is_bounded_while_the_caller_is_slow():
    started = []
    results = _dicom_threads.in_order(started.append, range(50), 2)
    next(results)
    time.sleep(0.05)
    assert len(started) <= 2 * 2 + 1
    results.close()
    assert _no_decode_threads()


def test_worker_count_follows_the_cpus_this_process_may_use(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {3}, raising=False)
    assert _dicom_threads.worker_count(20) == 1
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)), raising=False)
    assert _dicom_threads.worker_count(20) == 8
    assert _dicom_threads.worker_count(3) == 3
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 6)
    assert _dicom_threads.worker_count(20) == 6
