"""`AssistantController`: turns the user's chat actions into worker requests and the worker's
replies into `Assistant` changes, and keeps the study's session saved (`ConversationStore`).

All model work goes through `InferenceBridge` (a separate process); every slot here runs on the
GUI thread and returns at once. Errors from the worker become a message in the chat; the
study, the conversation and the boxes stay, and the client restarts the worker by itself.
"""

from __future__ import annotations

import logging
import os
import time
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
from PySide6.QtCore import QObject, Signal

from birdview.core.ask import AskSpec, SweepSpec
from birdview.core.assistant import SWEEP_TASK, Assistant, ModelState
from birdview.core.geometry import Plane
from birdview.core.model_card import card_for_checkpoint, card_warnings
from birdview.core.model_input import render_for_model, volume_intensity_range
from birdview.core.prompts import Task, check_question_length, grounding_question
from birdview.core.session import Session
from birdview.core.session_store import StudyRef
from birdview.core.volume import Volume
from birdview.inference.protocol import (
    AskReply,
    Loaded,
    SweepReply,
    WorkerConfig,
    WorkerFailure,
)
from birdview.ui._observe import observe
from birdview.ui.conversation_store import ConversationStore
from birdview.ui.inference_bridge import InferenceBridge

__all__ = ["AssistantController", "failure_text"]

logger = logging.getLogger(__name__)


def failure_text(failure: WorkerFailure) -> str:
    """What a failed request means for the user, and what happens next."""
    kept = "The study, the conversation and the boxes are kept."
    if failure.kind == "crashed":
        return (
            f"The model stopped unexpectedly ({failure.message}). It is being restarted with "
            f"the same model. {kept} Ask again once the model panel says Ready."
        )
    if failure.kind == "timeout":
        return (
            f"The model stopped answering ({failure.message}) and is being restarted. {kept} "
            "Ask again once the model panel says Ready."
        )
    if failure.kind == "oom":
        return f"The model ran out of memory: {failure.message}. {kept}"
    if failure.kind == "cancelled":
        return "Cancelled."
    return f"The model could not answer: {failure.message}. {kept}"


class AssistantController(QObject):
    """Chat actions → requests; replies → the assistant; the assistant → autosave.

    Signals:
        message(text): something for the status bar (autosave problems, restores).
    """

    message = Signal(str)

    def __init__(
        self,
        session: Session,
        assistant: Assistant,
        bridge: InferenceBridge,
        session_dir: str | os.PathLike | None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.session = session
        self.assistant = assistant
        self.bridge = bridge
        # The conversation's session file: saved soon after each change, restored on opening.
        self._store = ConversationStore(session, assistant, session_dir, self.message.emit, self)
        self.session_dir = self._store.session_dir
        self._requests: dict[str, tuple[int, float]] = {}  # request id → (turn id, start time)
        # The volume's model-input intensity range takes ~0.1 s on a CT: computed off the GUI
        # thread as soon as a volume opens, so the first question does not stall the window.
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="birdview-range")
        self._intensity: tuple[Volume, Future] | None = None
        self._adapter_dir = ""
        bridge.loaded.connect(self._on_loaded)
        bridge.token.connect(self._on_token)
        bridge.progress.connect(self._on_progress)
        bridge.finished.connect(self._on_finished)
        observe(self, session.events.volume, self._on_volume_changed)
        observe(self, assistant.events.user_box, self._store.schedule_save)

    # -- the model -----------------------------------------------------------------------------

    def load_model(self, config: WorkerConfig) -> None:
        """Load a checkpoint in the worker (starting it if needed)."""
        self._adapter_dir = config.adapter_dir or ""
        self.assistant.set_model(
            ModelState(
                "loading", model_dir=config.model_dir, precision=config.precision, message=""
            )
        )
        self.bridge.load(config)

    def _on_loaded(self, result: object) -> None:
        model_dir = self.assistant.model.model_dir
        if isinstance(result, Loaded):
            card, card_problem = None, ""
            try:
                card = card_for_checkpoint(model_dir, self._adapter_dir)
            except ValueError as exc:  # the model answers all the same; the panel says why
                card_problem = str(exc)
            self.assistant.set_model(
                ModelState(
                    "ready",
                    model_dir=model_dir,
                    family=result.family,
                    precision=result.precision,
                    device=result.device,
                    memory_bytes=result.memory_bytes,
                    notices=result.notices,
                    checkpoint_sha256=result.checkpoint_sha256,
                    card=card,
                    card_problem=card_problem,
                )
            )
            logger.info("model ready: %s (%s on %s)", model_dir, result.precision, result.device)
        elif isinstance(result, WorkerFailure):
            failed = ModelState("error", model_dir=model_dir, message=result.message)
            self.assistant.set_model(failed)
            logger.warning("model failed to load: %s", result.message)

    # -- asking --------------------------------------------------------------------------------

    def ask(self, question: str, *, task: str = "", use_region: bool = False) -> int | None:
        """Ask about the slice in the main view (or the drawn box's slice when the question
        refers to it); returns the new turn's id, or None when nothing can be asked."""
        volume = self.session.volume
        if volume is None or not self.assistant.model.ready or not self._fits(question):
            return None
        region = self.assistant.user_box if use_region else None
        if use_region and region is None:
            return None
        plane = region.plane if region else self.session.main_plane
        index = region.slice_index if region else self.session.slice_index(plane)
        shown = question.strip() or _task_wording(task)
        turn = self.assistant.begin(
            shown,
            task=task,
            plane=plane,
            slice_index=index,
            region=region,
            warnings=self._warnings(volume, shown),
        )
        try:
            request_id = self.bridge.ask(
                self._model_image(volume, plane, index),
                AskSpec(
                    question.strip(),
                    task=task or None,
                    region=region,
                    plane=plane,
                    slice_index=index,
                ),
                history=self.assistant.history_for(plane, index),
            )
        except Exception as exc:  # noqa: BLE001 - e.g. the worker is gone for good
            self.assistant.fail(turn.turn_id, f"The question could not be sent: {exc}")
            return turn.turn_id
        self._requests[request_id] = (turn.turn_id, time.monotonic())
        return turn.turn_id

    def find(self, target: str) -> int | None:
        """Ground ``target`` ("liver" or a full question) on the current slice."""
        return self.ask(_grounding(target), task=Task.VG.code)

    def find_in_volume(self, target: str, plane: Plane | None = None) -> int | None:
        """Ground ``target`` on every slice of ``plane`` (default: the main view's)."""
        volume = self.session.volume
        if volume is None or not self.assistant.model.ready or not target.strip():
            return None
        if not self._fits(target):
            return None
        plane = Plane(plane or self.session.main_plane)
        question = _grounding(target)
        turn = self.assistant.begin(
            question, task=SWEEP_TASK, plane=plane, warnings=self._warnings(volume, question)
        )
        total = self.session.slice_count(plane)
        self.assistant.set_progress(turn.turn_id, 0, total)
        try:
            request_id = self.bridge.sweep(volume, SweepSpec(question, plane))
        except Exception as exc:  # noqa: BLE001
            self.assistant.fail(turn.turn_id, f"The sweep could not be sent: {exc}")
            return turn.turn_id
        self._requests[request_id] = (turn.turn_id, time.monotonic())
        return turn.turn_id

    def _warnings(self, volume: Volume, question: str) -> list[str]:
        """What the model card says against this study or question (shown with the answer,
        so a box is not taken at face value)."""
        return card_warnings(
            self.assistant.model.card,
            modality=volume.modality,
            question=question,
            body_part=str(volume.metadata.get("body_part") or ""),
        )

    def _fits(self, question: str) -> bool:
        """Whether the question is short enough to ask; if not, the status bar says why and
        the typed text stays in the box to be shortened."""
        try:
            check_question_length(question.strip())
        except ValueError as exc:
            self.message.emit(str(exc))
            return False
        return True

    def cancel(self) -> None:
        """Stop every question still being answered."""
        for request_id in list(self._requests):
            self.bridge.cancel(request_id)

    # -- replies -------------------------------------------------------------------------------

    def _on_token(self, request_id: str, text: str) -> None:
        if request_id in self._requests:
            self.assistant.add_text(self._requests[request_id][0], text)

    def _on_progress(self, request_id: str, done: int, total: int) -> None:
        if request_id in self._requests:
            self.assistant.set_progress(self._requests[request_id][0], done, total)

    def _on_finished(self, request_id: str, result: object) -> None:
        if request_id not in self._requests:
            return
        turn_id, started = self._requests.pop(request_id)
        seconds = time.monotonic() - started
        if isinstance(result, AskReply):
            self.assistant.finish(
                turn_id,
                answer=result.text,
                boxes=result.boxes,
                model_question=result.question,
                seconds=seconds,
                cancelled=result.cancelled,
                dropped=result.dropped,
                reasoning=result.reasoning,
            )
        elif isinstance(result, SweepReply) and self.session.volume is not None:
            boxes = [box for part in result.results for box in part.boxes]
            self.assistant.finish_sweep(
                turn_id, self.session.volume, boxes, cancelled=result.cancelled, seconds=seconds
            )
        elif isinstance(result, WorkerFailure) and result.kind == "cancelled":
            self._on_cancelled(turn_id, seconds)
        elif isinstance(result, WorkerFailure):
            self._on_failure(turn_id, result)
        self._store.schedule_save()

    def _on_cancelled(self, turn_id: int, seconds: float) -> None:
        """Cancelled before the worker began it: an answer that stopped with nothing."""
        turn = self.assistant.turn(turn_id)
        volume = self.session.volume
        if turn is not None and turn.is_sweep and volume is not None:
            self.assistant.finish_sweep(turn_id, volume, [], cancelled=True, seconds=seconds)
        elif turn is not None:
            self.assistant.finish(turn_id, answer=turn.answer, cancelled=True, seconds=seconds)

    def _on_failure(self, turn_id: int, failure: WorkerFailure) -> None:
        model = self.assistant.model
        if failure.kind in ("crashed", "timeout") and model.ready and not self.bridge.gave_up():
            self.assistant.set_model(
                ModelState(
                    "loading",
                    model_dir=model.model_dir,
                    precision=model.precision,
                    message="restarting after a failure",
                )
            )
        self.assistant.fail(turn_id, failure_text(failure))

    # -- images --------------------------------------------------------------------------------

    def _model_image(self, volume: Volume, plane: Plane, index: int) -> np.ndarray:
        """The slice as the model sees it, on one intensity range for the whole volume (what
        SA-Med2D did, and what the sweep uses too)."""
        if self._intensity is None or self._intensity[0] is not volume:
            self._intensity = (volume, self._pool.submit(volume_intensity_range, volume))
        intensity_range = self._intensity[1].result()
        return render_for_model(volume, plane, index, intensity_range=intensity_range)

    # -- sessions ------------------------------------------------------------------------------

    def _on_volume_changed(self, *_: object) -> None:
        # The conversation still names the study it is about, so this saves it under that
        # study's identity, whatever is open now.
        self.save_now()
        for request_id in list(self._requests):
            self.bridge.cancel(request_id)
        self._requests.clear()  # answers still on their way belong to the old study: dropped
        volume = self.session.volume
        self._intensity = None
        if volume is not None:
            self._intensity = (volume, self._pool.submit(volume_intensity_range, volume))
        self.assistant.clear(StudyRef.of(volume) if volume is not None else None)
        self._store.restore()

    def save_now(self) -> None:
        """Write the conversation to its own study's session file now (atomically), if it has
        anything to keep."""
        self._store.save_now()


def _grounding(target: str) -> str:
    """A grounding question: kept as typed when it is one, else Med-GRIT's wording."""
    text = " ".join(target.split())
    if text.endswith("?") or text.lower().startswith(("where", "find", "locate", "show")):
        return text
    return grounding_question(text)


def _task_wording(task: str) -> str:
    return {
        Task.ROC.code: "What is this?",
        Task.RC.code: "Describe this region",
        Task.MIA.code: "Analyse image",
    }.get(task, task)
