"""The four BiRD tasks, their questions, and conversations in the chat format models read.

Question wording follows Med-GRIT-270k (BiRD's data), because a checkpoint fine-tuned on
it answers best when asked the way it was taught. A drawn region goes into a question in the
box format of the checkpoint's family (`BoxCodec.encode_region`), so the same code serves the
app, the worker and the trainer, and they cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

from birdview.core import families
from birdview.core.box import Box
from birdview.core.box_codecs import BoxCodec

__all__ = [
    "MAX_QUESTION_CHARS",
    "Conversation",
    "Task",
    "Turn",
    "analysis_question",
    "caption_question",
    "check_question_length",
    "grounding_question",
    "max_new_tokens",
    "question_for",
    "referring_question",
    "to_messages",
]

SizePx = tuple[float, float]

# Med-GRIT's questions are under 300 characters, and a report paragraph pasted into the chat a
# few thousand; 4,000 characters (about 1,000 tokens) holds both with room. Every character is
# prompt the model must read, so far longer questions only cost: one of 120 KB ran for minutes
# and took gigabytes before this limit.
MAX_QUESTION_CHARS = 4000


class Task(str, Enum):
    """The four tasks; values are Med-GRIT's code names, so ``Task("RO") is Task.ROC``."""

    VG = "VG"  # Visual Grounding: name → box
    ROC = "RO"  # Referring Object Classification: box → name
    RC = "GC"  # Referring Captioning: box → description
    MIA = "MII"  # Medical Image Analysis: image → description

    @property
    def code(self) -> str:
        """Med-GRIT's code name ("VG", "RO", "GC", "MII")."""
        return self.value

    @property
    def needs_region(self) -> bool:
        return self in (Task.ROC, Task.RC)


def check_question_length(question: str) -> str:
    """``question`` unchanged when it fits `MAX_QUESTION_CHARS`.

    Raises:
        ValueError: it is longer; the message gives its length and the limit.
    """
    if len(question) > MAX_QUESTION_CHARS:
        raise ValueError(
            f"Unable to ask as the question is {len(question):,} characters long and the limit "
            f"is {MAX_QUESTION_CHARS:,}; shorten it, or ask about one finding at a time"
        )
    return question


def grounding_question(target: str) -> str:
    """VG: "Where is the left hip located in the image?"."""
    target = " ".join(str(target).split())
    if not target:
        raise ValueError("Unable to write a grounding question as the target is empty")
    has_article = target.lower().startswith(("the ", "a ", "an "))
    return f"Where is {target if has_article else 'the ' + target} located in the image?"


def referring_question(region_text: str) -> str:
    """ROC: "What anatomical structure is present at the <box>…</box>?"."""
    return f"What anatomical structure is present at the {region_text}?"


def caption_question(region_text: str) -> str:
    """RC: "Can you describe the content within the <box>…</box>?"."""
    return f"Can you describe the content within the {region_text}?"


def analysis_question() -> str:
    """MIA: the one question Med-GRIT asks about a whole image."""
    return "What can you interpret from the overall image?"


def question_for(
    task: Task | str,
    *,
    codec: BoxCodec | str,
    box: Box | None = None,
    target: str | None = None,
    image_size_px: SizePx,
    model_size_px: SizePx | None = None,
) -> str:
    """The question for ``task``: VG needs ``target``; ROC and RC need ``box`` (written in the
    codec's format for an image of ``image_size_px``); MIA needs neither.

    Raises:
        ValueError: the task lacks what it needs, the family is unknown, or (from the codec) a
            size is missing.
    """
    task = Task(task)
    if isinstance(codec, str):
        codec = families.get(codec).codec
    if task is Task.MIA:
        return analysis_question()
    if task is Task.VG:
        if target is None:
            raise ValueError("Unable to write a grounding (VG) question as no target was given")
        return grounding_question(target)
    if box is None:
        raise ValueError(f"Unable to write a {task.name} question as no box was given")
    region = codec.encode_region(box, image_size_px, model_size_px=model_size_px)
    return referring_question(region) if task is Task.ROC else caption_question(region)


def max_new_tokens(task: Task | str) -> int:
    """BiRD's inference budget: 80 new tokens, 100 for the image analysis (MIA)."""
    return 100 if Task(task) is Task.MIA else 80


# -- conversations --------------------------------------------------------------------------


@dataclass(frozen=True)
class Turn:
    """One question and the model's answer.

    Attributes:
        question: as sent (with any region already written in the family's format).
        answer: the model's raw text, markup included, so that the model reads its own
            format back in later turns.
        boxes: the boxes parsed from the answer (for the viewer; not sent to the model).
    """

    question: str
    answer: str
    boxes: tuple[Box, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "boxes", tuple(self.boxes))


@dataclass(frozen=True)
class Conversation:
    """The turns so far about one image (the image is sent once, with the first question)."""

    turns: tuple[Turn, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "turns", tuple(self.turns))

    def with_turn(self, turn: Turn) -> Conversation:
        return Conversation((*self.turns, turn))


def to_messages(conversation: Conversation, new_question: str) -> list[dict[str, Any]]:
    """The conversation plus a new question in Hugging Face chat format, for
    ``processor.apply_chat_template(messages, add_generation_prompt=True)``. The image
    placeholder goes only in the first user turn, as Med-GRIT's training data has it."""
    questions = [turn.question for turn in conversation.turns] + [new_question]
    messages: list[dict[str, Any]] = []
    for n, question in enumerate(questions):
        content: list[dict[str, Any]] = [{"type": "image"}] if n == 0 else []
        content.append({"type": "text", "text": question})
        messages.append({"role": "user", "content": content})
        if n < len(conversation.turns):
            answer = conversation.turns[n].answer
            messages.append({"role": "assistant", "content": [{"type": "text", "text": answer}]})
    return messages
