"""The conversation as a saved session and back: `session_record` writes the finished turns of
`birdview.core.assistant.Assistant` into a `SessionRecord`; `turns_from_record` reads them back
as `ChatTurn`s, checked against the study's volume."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from birdview.core.box import Box
from birdview.core.chat_turn import ChatTurn
from birdview.core.extent import extent_of
from birdview.core.geometry import Plane, slice_count
from birdview.core.session_store import ModelInfo, RecordedTurn, SessionRecord, StudyRef
from birdview.core.volume import Volume

__all__ = ["session_record", "turns_from_record"]


def session_record(
    study: StudyRef,
    model: ModelInfo,
    turns: Sequence[ChatTurn],
    user_box: Box | None,
    *,
    created_at: str,
    updated_at: str,
) -> SessionRecord:
    """The finished ``turns`` and the drawn box, as a record of ``study``."""
    recorded = [
        RecordedTurn(
            question=t.question,
            answer=t.answer if t.state != "error" else f"[error] {t.error}",
            boxes=t.boxes,
            task=t.task,
            asked_at=t.asked_at,
            plane=t.plane.value,
            slice_index=t.slice_index,
            model_question=t.model_question,
            region=t.region,
            reasoning=t.reasoning,
            warnings=t.warnings,
        )
        for t in turns
        if t.finished
    ]
    return SessionRecord(
        study_identity=study.identity,
        study_paths=study.paths,
        series_description=study.description,
        model=model,
        created_at=created_at,
        updated_at=updated_at,
        turns=tuple(recorded),
        user_boxes=(user_box,) if user_box is not None else (),
    )


def turns_from_record(record: SessionRecord, volume: Volume) -> tuple[ChatTurn, ...]:
    """The saved turns as finished `ChatTurn`s numbered from 1 (sweep extents recomputed from
    ``volume``).

    Raises:
        ValueError: one of the record's boxes or slices lies on a slice ``volume`` does not
            have.
    """
    _check_slices(record, volume)
    turns = []
    for n, saved in enumerate(record.turns, start=1):
        first = saved.boxes[0] if saved.boxes else None
        plane = saved.plane or (first.plane.value if first else Plane.AXIAL.value)
        turn = ChatTurn(
            turn_id=n,
            question=saved.question,
            task=saved.task,
            plane=Plane(plane),
            slice_index=saved.slice_index if saved.plane else (first.slice_index if first else 0),
            region=saved.region,
            answer=saved.answer,
            model_question=saved.model_question or saved.question,
            boxes=saved.boxes,
            state="done",
            asked_at=saved.asked_at,
            reasoning=saved.reasoning,
            warnings=saved.warnings,
        )
        if turn.is_sweep and turn.boxes:
            turn = replace(turn, extent=extent_of(volume, turn.boxes))
        turns.append(turn)
    return tuple(turns)


def _check_slices(record: SessionRecord, volume: Volume) -> None:
    places = [(b.plane, b.slice_index) for b in record.user_boxes]
    for turn in record.turns:
        places += [(b.plane, b.slice_index) for b in (*turn.boxes, turn.region) if b]
        if turn.plane:
            places.append((Plane(turn.plane), turn.slice_index))
    for plane, index in places:
        count = slice_count(volume, plane)
        if not 0 <= index < count:
            raise ValueError(
                f"Unable to restore the session as it refers to {plane.value} slice {index} "
                f"of a study with {count}"
            )
