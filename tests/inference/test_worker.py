"""The worker process and its client, end to end: a real worker, a real tiny model.

One client serves most tests (starting a worker and loading costs seconds); the crash and hang
tests replace its worker on purpose, and check that the next request works again.
"""

from __future__ import annotations

import multiprocessing
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from birdview.core.ask import AskSpec, SweepSpec
from birdview.core.box import Box
from birdview.core.geometry import Plane
from birdview.core.prompts import MAX_QUESTION_CHARS
from birdview.core.volume import Volume
from birdview.inference._checkpoint_files import checkpoint_sha256, hashed_files
from birdview.inference._client_process import spawn_worker, stop_worker
from birdview.inference.client import InferenceClient
from birdview.inference.errors import WorkerCrashedError, WorkerTimeoutError
from birdview.inference.protocol import (
    AskReply,
    AskRequest,
    Loaded,
    Status,
    SweepReply,
    SweepRequest,
    WorkerConfig,
    WorkerFailure,
)
from tests.inference.conftest import DAMAGE_MESSAGES

# Long enough that a cancel, a kill or a stop lands mid-answer (about 6 ms a token here).
LONG_ANSWER = 2000
SHORT_ANSWER = 12


@pytest.fixture(scope="module")
def config(tiny_checkpoints: dict[str, Path]) -> WorkerConfig:
    """The conftest's tiny random qwen3_vl checkpoint, on one CPU thread."""
    return WorkerConfig(
        str(tiny_checkpoints["qwen3_vl"]), precision="fp32", device="cpu", torch_threads=1
    )


@pytest.fixture(scope="module")
def client(config: WorkerConfig):
    client = InferenceClient(timeout_s=30.0, load_timeout_s=120.0, start_timeout_s=60.0)
    client.start()
    loaded = client.load(config).result(120)
    assert isinstance(loaded, Loaded), loaded
    yield client
    client.shutdown()


@pytest.fixture
def image() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (56, 56, 3), dtype=np.uint8)


def _children_running_workers() -> list[int]:
    """Our child processes started by multiprocessing's spawn (not its resource tracker)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == os.getpid() and b"spawn_main" in cmdline:
            pids.append(int(entry.name))
    return pids


def test_ask_streams_tokens_that_add_up_to_the_reply(client, image):
    tokens: list[str] = []
    reply = client.ask(
        image, "Where is the liver?", max_new_tokens=SHORT_ANSWER, on_token=tokens.append
    ).result(60)
    assert isinstance(reply, AskReply), reply
    assert reply.n_new_tokens >= 1 and not reply.cancelled
    assert len(tokens) >= 1
    assert "".join(tokens) == reply.text
    assert reply.question == "Where is the liver?"


def test_history_and_on_done_callback(client, image):
    done = threading.Event()
    results = []

    def on_done(result):
        results.append(result)
        done.set()

    handle = client.ask(
        image,
        "And the spleen?",
        history=[("Where is the liver?", "<ref>liver</ref>")],
        max_new_tokens=SHORT_ANSWER,
        on_done=on_done,
    )
    assert done.wait(60)
    assert results == [handle.result(0)]
    assert isinstance(results[0], AskReply)


def test_a_drawn_region_crosses_and_is_written_into_the_question(client, image):
    region = Box("axial", 3, 10.0, 12.0, 30.0, 40.0, label="lesion")
    reply = client.ask(
        image, "What is at the {region}?", region=region, slice_index=3, max_new_tokens=4
    ).result(60)
    assert isinstance(reply, AskReply), reply
    assert "{region}" not in reply.question and reply.question.startswith("What is at the ")
    assert all(box.slice_index == 3 for box in reply.boxes)


def test_status_answers_while_an_answer_streams(client, image):
    seen: list[Status] = []
    first = threading.Event()
    handle = client.ask(image, "Where?", max_new_tokens=LONG_ANSWER, on_token=lambda t: first.set())
    assert first.wait(60)
    seen.append(client.status())
    client.cancel(handle.request_id)
    reply = handle.result(60)
    assert seen[0].state == "busy" and seen[0].pid == client.pid
    assert seen[0].family == "qwen3_vl"
    assert isinstance(reply, AskReply)


def test_cancel_mid_answer_ends_it_early(client, image):
    holder: dict[str, str] = {}

    def on_token(_text: str) -> None:
        if "cancelled" not in holder:
            holder["cancelled"] = "yes"
            client.cancel(holder["id"])

    handle = client.ask(image, "Where?", max_new_tokens=LONG_ANSWER, on_token=on_token)
    holder["id"] = handle.request_id
    reply = handle.result(60)
    assert isinstance(reply, AskReply), reply
    assert reply.cancelled
    assert reply.n_new_tokens < LONG_ANSWER


def test_cancel_before_start_fails_it_as_cancelled(client, image):
    started = threading.Event()
    first = client.ask(
        image, "Where?", max_new_tokens=LONG_ANSWER, on_token=lambda _t: started.set()
    )
    queued = client.ask(image, "Where?", max_new_tokens=SHORT_ANSWER)
    assert started.wait(60)
    client.cancel(queued.request_id)
    client.cancel(first.request_id)
    failure = queued.result(60)
    assert failure.kind == "cancelled"
    reply = first.result(60)
    assert isinstance(reply, AskReply) and reply.cancelled


def test_bad_request_is_refused_and_the_worker_goes_on(client, image):
    pid = client.pid
    failure = client.ask(np.zeros((7, 5), np.uint8), "Where?").result(60)
    assert failure.kind == "bad_request"
    assert "(7, 5)" in failure.message
    empty = client.ask(image, "   ").result(60)
    assert empty.kind == "bad_request"
    reply = client.ask(image, "Where?", max_new_tokens=SHORT_ANSWER).result(60)
    assert isinstance(reply, AskReply)
    assert client.pid == pid


def test_loaded_names_the_checkpoint_by_its_sha256(client, config):
    expected = checkpoint_sha256(hashed_files(Path(config.model_dir)))

    assert client.loaded.checkpoint_sha256 == expected
    assert len(expected) == 64


def test_a_too_long_question_is_refused_before_it_is_sent(client, image):
    with pytest.raises(ValueError, match=f"limit is {MAX_QUESTION_CHARS:,}; shorten it"):
        client.ask(image, "Where? " * MAX_QUESTION_CHARS)
    volume = Volume(np.zeros((2, 8, 8), np.int16), spacing_mm=(1.0, 1.0, 1.0))
    with pytest.raises(ValueError, match="characters long and the limit is"):
        client.sweep(volume, "x" * (MAX_QUESTION_CHARS + 1), "axial")
    at_the_limit = ("Where is the liver? " * MAX_QUESTION_CHARS)[:MAX_QUESTION_CHARS]
    reply = client.ask(image, at_the_limit, max_new_tokens=2).result(60)
    assert isinstance(reply, AskReply), reply


def _unchecked(spec, **fields):
    """``spec`` with ``fields`` set past its checks, as a sender that skips them (or a pickle
    made by hand) delivers it."""
    for name, value in fields.items():
        object.__setattr__(spec, name, value)
    return spec


def test_the_worker_refuses_a_too_long_question_from_any_sender():
    """Defence in depth: a sender that skips the client's check gets a bad_request."""
    worker = spawn_worker(start_timeout_s=60.0)
    try:
        too_long = "x" * (MAX_QUESTION_CHARS + 1)
        volume = Volume(np.zeros((2, 8, 8), np.int16), spacing_mm=(1.0, 1.0, 1.0))
        requests = [
            AskRequest(np.zeros((8, 8, 3), np.uint8), _unchecked(AskSpec(), question=too_long)),
            SweepRequest.from_volume(
                volume, spec=_unchecked(SweepSpec("x", "axial"), question=too_long)
            ),
        ]
        for request in requests:
            worker.connection.send(request)
            assert worker.connection.poll(60)
            failure = worker.connection.recv()
            assert isinstance(failure, WorkerFailure)
            assert (failure.request_id, failure.kind) == (request.request_id, "bad_request")
            assert failure.message.startswith("Unable to ask as the question is 4,001 characters")
    finally:
        stop_worker(worker.process, worker.connection, timeout_s=10.0)


def test_an_ask_spec_reaches_the_engine_unchanged(client, config, image):
    """Every option crosses the pipe: the worker answers exactly as the engine in this process
    answers the same spec (same weights, greedy), with the task's question and the region
    written in, the budget kept, boxes on the spec's slice, and nothing streamed."""
    from birdview.inference.engine import Engine
    from birdview.inference.loader import load_checkpoint

    region = Box("coronal", 5, 10.0, 12.0, 30.0, 40.0, label="lesion")
    spec = AskSpec(
        "",
        task="RO",
        region=region,
        plane="coronal",
        slice_index=5,
        max_new_tokens=5,
        stream=False,
    )
    tokens: list[str] = []

    reply = client.ask(image, spec, on_token=tokens.append).result(60)
    local = Engine(load_checkpoint(config.model_dir, precision="fp32", device="cpu")).ask(
        image, spec
    )

    assert isinstance(reply, AskReply), reply
    assert tokens == []
    assert reply.question == local.question and "{region}" not in reply.question
    assert reply.question.startswith("What anatomical structure is present at the ")
    assert reply.question != "What anatomical structure is present at the ?"
    assert (reply.text, reply.boxes) == (local.text, tuple(local.boxes))
    assert reply.n_new_tokens == local.n_new_tokens == 5  # random weights never stop early
    assert all((b.plane, b.slice_index) == (Plane.CORONAL, 5) for b in reply.boxes)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"question": "x" * (MAX_QUESTION_CHARS + 1)}, "characters long and the limit is 4,000"),
        ({"slice_index": -1}, "Unable to ask as the slice index -1 is negative"),
        ({"max_new_tokens": 0}, "Unable to ask as max_new_tokens 0 is below 1"),
        ({"task": "XX"}, "'XX' is not a valid Task"),
        ({"plane": "oblique"}, "'oblique' is not a valid Plane"),
    ],
)
def test_a_bad_ask_spec_is_refused_before_anything_is_sent(
    client, image, monkeypatch, options, message
):
    options = dict(options)
    sent: list[object] = []
    monkeypatch.setattr(client, "_submit", sent.append)
    question = options.pop("question", "Where?")

    with pytest.raises(ValueError, match=re.escape(message)) as built:
        AskSpec(question, **options)
    with pytest.raises(ValueError) as asked:
        client.ask(image, question, **options)

    assert str(asked.value) == str(built.value) and "\n" not in str(built.value)
    assert sent == []


def test_a_bad_sweep_spec_is_refused_before_anything_is_sent(client, monkeypatch):
    sent: list[object] = []
    monkeypatch.setattr(client, "_submit", sent.append)
    volume = Volume(np.zeros((2, 8, 8), np.int16), spacing_mm=(1.0, 1.0, 1.0))

    with pytest.raises(ValueError, match=r"^Unable to sweep as batch_size 0 is below 1$"):
        client.sweep(volume, "Where is the liver?", "axial", batch_size=0)
    with pytest.raises(TypeError, match="plane came beside a spec"):
        client.sweep(volume, SweepSpec("Where is the liver?", "axial"), "coronal")
    assert sent == []


def test_a_damaged_checkpoint_fails_the_load_with_its_cause(damaged):
    client = InferenceClient(timeout_s=30.0, load_timeout_s=120.0, start_timeout_s=60.0)
    client.start()
    try:
        for damage, message in sorted(DAMAGE_MESSAGES.items()):
            folder = damaged[damage]
            started = time.monotonic()
            failure = client.load(WorkerConfig(str(folder), device="cpu")).result(120)
            assert time.monotonic() - started < 30
            assert isinstance(failure, WorkerFailure), failure
            assert failure.kind == "load"
            assert re.match(
                rf"Unable to load the checkpoint at '{re.escape(str(folder))}' {message}",
                failure.message,
            )
        assert isinstance(client.status(), Status)  # the worker lives on
    finally:
        client.shutdown()


def test_sweep_reports_progress_and_one_result_per_slice(client):
    voxels = np.random.default_rng(1).normal(size=(3, 28, 28)).astype(np.float32)
    volume = Volume(voxels, metadata={"patient_name": "stays in the viewer"})
    progress: list[tuple[int, int]] = []
    reply = client.sweep(
        volume,
        "Where is the liver?",
        "axial",
        batch_size=2,
        max_new_tokens=4,
        on_progress=lambda done, total: progress.append((done, total)),
    ).result(60)
    assert isinstance(reply, SweepReply), reply
    assert [r.slice_index for r in reply.results] == [0, 1, 2]
    assert progress == [(2, 3), (3, 3)]


def test_killed_worker_fails_the_request_restarts_and_reloads(client, image):
    reference = client.ask(image, "Where?", max_new_tokens=SHORT_ANSWER).result(60)
    old_pid, restarts = client.pid, client.restarts
    killed = threading.Event()

    def kill_once(_text: str) -> None:
        if not killed.is_set():
            killed.set()
            os.kill(old_pid, signal.SIGKILL)

    failure = client.ask(image, "Where?", max_new_tokens=LONG_ANSWER, on_token=kill_once).result(60)
    assert killed.is_set()
    assert failure.kind == "crashed"
    assert isinstance(failure.to_exception(), WorkerCrashedError)
    again = client.ask(image, "Where?", max_new_tokens=SHORT_ANSWER).result(120)
    assert isinstance(again, AskReply), again
    assert again.text == reference.text  # same model reloaded, same greedy answer
    assert client.pid != old_pid and client.restarts == restarts + 1
    assert isinstance(client.loaded, Loaded)


def test_hung_worker_times_out_and_is_replaced(client, image):
    old_pid = client.pid
    stopped = threading.Event()

    def stop_once(_text: str) -> None:
        if not stopped.is_set():
            stopped.set()
            os.kill(old_pid, signal.SIGSTOP)

    client.timeout_s = 2.0
    try:
        started = time.monotonic()
        handle = client.ask(image, "Where?", max_new_tokens=LONG_ANSWER, on_token=stop_once)
        failure = handle.result(60)
        waited = time.monotonic() - started
    finally:
        client.timeout_s = 30.0
    assert stopped.is_set()
    assert failure.kind == "timeout", failure
    assert isinstance(failure.to_exception(), WorkerTimeoutError)
    assert 2.0 <= waited < 20
    reply = client.ask(image, "Where?", max_new_tokens=SHORT_ANSWER).result(120)
    assert isinstance(reply, AskReply), reply
    assert client.pid != old_pid
    assert not Path(f"/proc/{old_pid}").exists()  # killed and reaped


def test_restart_on_demand_reloads_the_model(client, image):
    old_pid = client.pid
    client.restart()
    reply = client.ask(image, "Where?", max_new_tokens=SHORT_ANSWER).result(120)
    assert isinstance(reply, AskReply), reply
    assert client.pid != old_pid


def test_requests_sent_while_loading_wait_for_the_model(client, config, image):
    load = client.load(config)
    ask = client.ask(image, "Where?", max_new_tokens=SHORT_ANSWER)
    during = client.status()  # the worker reads it after both requests: they are queued
    loaded = load.result(120)
    reply = ask.result(120)
    assert isinstance(loaded, Loaded)
    assert isinstance(reply, AskReply)
    assert during.state == "loading" or (during.state == "idle" and during.queued == 2)
    assert during.state != "loading" or during.queued == 1
    after = client.status()
    assert after.state == "idle" and after.queued == 0


def test_load_failure_then_shutdown_leaves_no_process(tmp_path):
    client = InferenceClient(timeout_s=10.0, start_timeout_s=60.0)
    hello = client.start()
    assert hello.pid in _children_running_workers()
    failure = client.load(WorkerConfig(str(tmp_path / "missing"))).result(120)
    assert failure.kind == "load", failure
    assert isinstance(client.status(), Status)  # the worker survived the failed load
    client.shutdown(timeout_s=10)
    client.shutdown()  # twice is harmless
    assert not [p for p in multiprocessing.active_children() if p.pid == hello.pid]
    assert hello.pid not in _children_running_workers()
    assert not Path(f"/proc/{hello.pid}").exists()
    with pytest.raises(RuntimeError, match="closed"):
        client.ask(np.zeros((4, 4, 3), np.uint8), "Where?")


def test_client_module_imports_no_torch():
    code = (
        "import sys, birdview.inference.client, birdview.inference.protocol;"
        "print(','.join(m for m in ('torch', 'transformers', 'PySide6') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""
