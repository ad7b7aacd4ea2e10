"""Asking a loaded model about an image, and sweeping a question over a volume's slices.

Generation is greedy (BiRD's evaluation), with BiRD's budgets (80 new tokens, 100 for MIA)
unless the family or the checkpoint's card sets its own. What differs between families comes
from the registry (`birdview.core.families`): the box codec, the image preparation (padding to
a square, the processor's resize rule), the end-of-turn tokens and the thought markers.
A reasoning model's thought is kept apart from its answer (`birdview.core.reasoning`), and
boxes are read from the answer only, mapped back to the pixels of the image that was given,
whatever size the processor resized it to.

How ``question`` and ``region`` combine in `Engine.ask`:

1. ``question`` contains ``{region}``: it is replaced by the region in the family's format
   ("What is at the {region}?" → "What is at the <|box_start|>(1,2),(3,4)<|box_end|>?").
2. ``question`` is blank and ``task`` is given: the task's Med-GRIT question
   (`prompts.question_for`; ROC and RC write the region into it, MIA needs none).
3. otherwise the region's text is appended to the question after a space.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from birdview.core import families
from birdview.core.ask import AskSpec, SweepSpec, ask_spec, sweep_spec
from birdview.core.conventions import conventions_of
from birdview.core.geometry import Plane, slice_count
from birdview.core.model_input import pad_to_square, render_for_model, volume_intensity_range
from birdview.core.prompts import Conversation, Task, max_new_tokens, question_for, to_messages
from birdview.core.reasoning import split_reasoning
from birdview.core.volume import Volume
from birdview.inference._engine_parts import (
    Answer,
    SliceResult,
    _CancelCriteria,
    _checked_image,
    _TextStreamer,
    clean_answer,
    model_size_px,
)
from birdview.inference.errors import InferenceError
from birdview.inference.loader import LoadedModel

__all__ = ["Answer", "Engine", "SliceResult", "clean_answer", "model_size_px"]

logger = logging.getLogger(__name__)

SizePx = tuple[float, float]


class Engine:
    """Runs questions through a `LoadedModel`."""

    def __init__(self, loaded: LoadedModel) -> None:
        self.loaded = loaded
        # loaded.family already follows the card's family, if it names one.
        rules = conventions_of(families.get(loaded.family), loaded.card)
        self.family, self.codec, self.overrides = rules.family, rules.codec, rules.overrides
        self.pad_to_square = rules.pad_to_square
        self.processor = loaded.processor
        self.processor.tokenizer.padding_side = "left"

    def _model_size(self, width: int, height: int) -> tuple[int, int]:
        return model_size_px(self.processor, width, height, self.family)

    def _prepared(self, image: np.ndarray) -> np.ndarray:
        """The image as the family's processor should get it."""
        return pad_to_square(image) if self.pad_to_square else image

    def _budget(self, task: Task | str | None) -> int:
        """The card's budget; a reasoning model's; the family's; else BiRD's."""
        generation = self.family.generation
        if self.overrides.max_new_tokens:
            return self.overrides.max_new_tokens
        if self.overrides.reasoning:
            return generation.reasoning_max_new_tokens
        return generation.max_new_tokens or _budget(task)

    # -- one image ---------------------------------------------------------------------------

    def ask(
        self,
        image_rgb: np.ndarray,
        spec: AskSpec | str,
        *,
        history: Conversation | None = None,
        on_token: Callable[[str], None] | None = None,
        cancel: Callable[[], bool] | None = None,
        **options: Any,
    ) -> Answer:
        """Ask ``spec`` about a (rows, cols, 3) uint8 image; see the module docstring for how
        its region goes in. A question string and `AskSpec` keywords make the spec too.
        ``on_token`` receives the answer's text piece by piece when the spec streams (the
        pieces add up to ``Answer.text``); ``cancel`` is polled after every token. Boxes get
        the spec's plane and slice index.

        Raises:
            ValueError: the image is not (rows, cols, 3) uint8, the question is empty, or the
                spec is invalid.
            InferenceError: generation failed (out of memory, a model error).
        """
        spec = ask_spec(spec, **options)
        on_token = on_token if spec.stream else None
        image = _checked_image(image_rgb)
        height, width = image.shape[:2]
        resized = self._model_size(width, height)
        question = self._question(spec, (width, height), resized)
        budget = spec.max_new_tokens or self._budget(spec.task)
        # A model taught on single questions (its card says so) is confused by earlier turns.
        if self.overrides.history is False:
            history = None
        prompt = self._prompt(history or Conversation(), question)
        prepared = self._prepared(image)
        started = time.perf_counter()
        raw, n_new, cancelled = self._answer(prompt, prepared, budget, on_token, cancel)
        if spec.max_new_tokens is None and not cancelled and n_new >= budget:
            raw, n_new, cancelled = self._think_on(prompt, prepared, raw, n_new, on_token, cancel)
        seconds = time.perf_counter() - started
        reply = split_reasoning(raw, self.family.chat.thoughts)
        parsed = self.codec.parse(
            reply.answer,
            (width, height),
            plane=spec.plane,
            slice_index=spec.slice_index,
            model_size_px=resized,
        )
        logger.info("answered in %.2f s: %d tokens, %d boxes", seconds, n_new, len(parsed.boxes))
        return Answer(
            reply.answer,
            parsed.boxes,
            parsed.dropped,
            question,
            n_new,
            seconds,
            cancelled,
            reasoning=reply.reasoning,
            raw=raw,
        )

    def _answer(
        self,
        prompt: str,
        image: np.ndarray,
        budget: int,
        on_token: Callable[[str], None] | None,
        cancel: Callable[[], bool] | None,
    ) -> tuple[str, int, bool]:
        """(text, new tokens, cancelled) of one greedy answer, streamed to ``on_token``."""
        streamer = None
        if on_token:
            streamer = _TextStreamer(self.processor.tokenizer, on_token, self.family)
        outputs, cancelled = self._generate([prompt], [image], budget, streamer, cancel)
        text, n_new = outputs[0]
        return text, n_new, cancelled

    def _think_on(
        self,
        prompt: str,
        image: np.ndarray,
        raw: str,
        n_new: int,
        on_token: Callable[[str], None] | None,
        cancel: Callable[[], bool] | None,
    ) -> tuple[str, int, bool]:
        """A model that reasons before answering spends the task's budget thinking; when it
        ran out with a thought begun, it goes on from where it stopped, up to the family's
        reasoning budget, so its answer is not cut off (a model that does not think is never
        given more than the task's budget)."""
        if not split_reasoning(raw, self.family.chat.thoughts).reasoning:
            return raw, n_new, False
        more = self.family.generation.reasoning_max_new_tokens - n_new
        if more <= 0:
            return raw, n_new, False
        logger.info("the model is reasoning: going on for up to %d more tokens", more)
        text, n_more, cancelled = self._answer(prompt + raw, image, more, on_token, cancel)
        return raw + text, n_new + n_more, cancelled

    def _question(self, spec: AskSpec, image_size: SizePx, resized: SizePx) -> str:
        question, region, task = spec.question, spec.region, spec.task
        region_text = None
        if region is not None:
            region_text = self.codec.encode_region(region, image_size, model_size_px=resized)
        if region_text is not None and "{region}" in question:
            return question.replace("{region}", region_text)
        if not question.strip() and task is not None:
            template = self.overrides.prompt(task)
            if template is not None and region_text is not None:
                return template.replace("{region}", region_text)
            if template is not None and Task(task) is Task.MIA:
                return template
            return question_for(
                task, codec=self.codec, box=region, image_size_px=image_size, model_size_px=resized
            )
        if not question.strip():
            raise ValueError("Unable to ask the model as the question is empty and no task given")
        return question if region_text is None else f"{question.rstrip()} {region_text}"

    def _prompt(self, history: Conversation, question: str) -> str:
        messages = to_messages(history, question)
        return self.processor.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=True
        )

    # -- a volume ----------------------------------------------------------------------------

    def sweep(
        self,
        volume: Volume,
        spec: SweepSpec | str,
        plane: Plane | str | None = None,
        *,
        progress: Callable[[int, int], None] | None = None,
        cancel: Callable[[], bool] | None = None,
        **options: Any,
    ) -> list[SliceResult]:
        """Ask ``spec`` of every slice of its plane, ``batch_size`` slices at a time. A
        question string, ``plane`` and `SweepSpec` keywords make the spec too.

        Slices are rendered with `render_for_model` on one intensity range for the whole
        volume. Returns one result per slice in slice order; when ``cancel()`` turns True
        (checked between batches) the results so far. ``progress(done, total)`` follows each
        batch.

        Raises:
            ValueError: the question is empty, or the spec is invalid (a batch size below 1).
            InferenceError: generation failed.
        """
        spec = sweep_spec(spec, plane, **options)
        if not spec.question.strip():
            raise ValueError("Unable to sweep as the question is empty")
        plane, batch_size = spec.plane, spec.batch_size
        total = slice_count(volume, plane)
        intensity_range = volume_intensity_range(volume)
        prompt = self._prompt(Conversation(), spec.question)
        budget = spec.max_new_tokens or self._budget(None)
        results: list[SliceResult] = []
        for start in range(0, total, batch_size):
            if cancel is not None and cancel():
                logger.info("sweep cancelled after %d of %d slices", len(results), total)
                break
            indices = range(start, min(start + batch_size, total))
            images = [
                _checked_image(render_for_model(volume, plane, i, intensity_range=intensity_range))
                for i in indices
            ]
            prepared = [self._prepared(image) for image in images]
            outputs, _ = self._generate([prompt] * len(images), prepared, budget, None, None)
            for index, image, (text, _n) in zip(indices, images, outputs, strict=True):
                results.append(self._slice_result(text, image, plane, index))
            if progress is not None:
                progress(len(results), total)
        return results

    def _slice_result(self, text: str, image: np.ndarray, plane: Plane, index: int) -> SliceResult:
        height, width = image.shape[:2]
        resized = self._model_size(width, height)
        answer = split_reasoning(text, self.family.chat.thoughts).answer
        parsed = self.codec.parse(
            answer, (width, height), plane=plane, slice_index=index, model_size_px=resized
        )
        return SliceResult(index, parsed.boxes, answer)

    def answer_batch(
        self, images: list[np.ndarray], questions: list[str], *, max_new_tokens: int
    ) -> list[str]:
        """Greedy answers to one first-turn question per image, generated as one left-padded
        batch (the evaluation's path); texts keep their box markup, end tokens removed.

        Raises:
            ValueError: an image is not (rows, cols, 3) uint8, or the lists differ in length.
            InferenceError: generation failed.
        """
        if len(images) != len(questions):
            raise ValueError(
                f"Unable to answer as {len(images)} images came with {len(questions)} questions"
            )
        checked = [self._prepared(_checked_image(image)) for image in images]
        prompts = [self._prompt(Conversation(), question) for question in questions]
        outputs, _ = self._generate(prompts, checked, max_new_tokens, None, None)
        return [text for text, _ in outputs]

    # -- generation --------------------------------------------------------------------------

    def _generate(
        self,
        prompts: list[str],
        images: list[np.ndarray],
        budget: int,
        streamer: Any,
        cancel: Callable[[], bool] | None,
    ) -> tuple[list[tuple[str, int]], bool]:
        """Greedy generation for a batch; [(cleaned text, new tokens)] and whether cancelled."""
        import torch
        from transformers import StoppingCriteriaList

        # One list of images per prompt: Gemma 3's processor needs it for a batch, and the
        # Qwen processors read it the same as a flat list.
        per_prompt = [[image] for image in images]
        inputs = self.processor(text=prompts, images=per_prompt, return_tensors="pt", padding=True)
        inputs = inputs.to(self.loaded.device)
        stop = _CancelCriteria(cancel)
        model = self.loaded.model
        try:
            with torch.inference_mode():
                output = model.generate(
                    **inputs,
                    max_new_tokens=budget,
                    do_sample=False,
                    streamer=streamer,
                    stopping_criteria=StoppingCriteriaList([stop]),
                    pad_token_id=self.processor.tokenizer.pad_token_id,
                )
        except torch.cuda.OutOfMemoryError as exc:
            raise InferenceError(
                "Unable to answer as the device ran out of memory; ask about fewer slices at "
                "once or load the model at a lower precision"
            ) from exc
        except RuntimeError as exc:
            raise InferenceError(f"Unable to answer as the model failed ({exc})") from exc
        new_tokens = output[:, inputs["input_ids"].shape[1] :]
        return [self._decode(row) for row in new_tokens], stop.cancelled

    def _decode(self, ids: Any) -> tuple[str, int]:
        tokenizer = self.processor.tokenizer
        ids = ids.tolist()
        end_ids = {tokenizer.convert_tokens_to_ids(m) for m in self.family.chat.stop_tokens}
        n_new = len(ids)
        for n, token in enumerate(ids):
            if token in end_ids:
                n_new = n + 1
                break
        text = tokenizer.decode(ids[:n_new], skip_special_tokens=False)
        return clean_answer(text, self.family), n_new


def _budget(task: Task | str | None) -> int:
    return max_new_tokens(task if task is not None else Task.VG)
