"""``birdview ask``: one question about one slice, answered in this process (no viewer).

    birdview ask --model DIR --image PATH [--slice N] [--plane axial] [--box X1 Y1 X2 Y2]
                 [--task vg|roc|rc|mia] [--adapter DIR] [--precision nf4|int8|bf16|fp32]
                 [--device auto|cpu|cuda] [--worker] [--json] QUESTION

The slice (default: the middle one of the plane; plane default: the acquisition plane) is
rendered for the model the way the viewer renders it. Boxes are printed in that slice's
pixels. A question may hold ``{region}`` where the ``--box`` goes (see `engine`).
``--worker`` asks through the model worker process (`client.InferenceClient`), as the viewer
does; a frozen (packaged) viewer, which has no torch of its own, always does.

Exit codes: 0 answered, 1 the model failed, 2 bad input (unreadable image, a missing or
damaged checkpoint, a slice or box out of range, a question over
`prompts.MAX_QUESTION_CHARS`), always with a one-line message.

``--json`` prints ``text``, the answer as a person reads it (`assistant.readable_answer`: box
markup replaced by labels, reasoning left out), ``reasoning`` (the thought of a model that
reasons first, "" otherwise), ``raw`` (all it generated) and the model's ``family``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from dataclasses import replace

from birdview.core.ask import AskSpec
from birdview.core.errors import BirdViewError
from birdview.core.prompts import Task
from birdview.inference.errors import InferenceError, ModelLoadError

__all__ = ["main"]

logger = logging.getLogger(__name__)

_TASKS = {"vg": Task.VG, "roc": Task.ROC, "rc": Task.RC, "mia": Task.MIA}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    from birdview._logging import configure_logging

    configure_logging(verbose=args.verbose, to_file=False)
    try:
        return _ask(args)
    except (BirdViewError, ModelLoadError, ValueError, IndexError) as exc:
        print(f"birdview ask: error: {exc}", file=sys.stderr)
        return 2
    except InferenceError as exc:
        print(f"birdview ask: error: {exc}", file=sys.stderr)
        return 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="birdview ask", description="Ask a local model about one slice of an image."
    )
    parser.add_argument("question", nargs="?", default="", help="the question ({region}: --box)")
    parser.add_argument("--model", required=True, help="checkpoint folder (safetensors)")
    parser.add_argument("--adapter", help="a peft adapter folder for the checkpoint")
    parser.add_argument(
        "--precision", default="auto", choices=("auto", "nf4", "int8", "bf16", "fp32")
    )
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--image", required=True, help="DICOM, NIfTI or raster image")
    parser.add_argument("--slice", type=int, help="slice index (default: the middle one)")
    parser.add_argument("--plane", choices=("axial", "coronal", "sagittal"))
    parser.add_argument(
        "--box", type=float, nargs=4, metavar=("X1", "Y1", "X2", "Y2"), help="a region (px)"
    )
    parser.add_argument("--task", choices=sorted(_TASKS), help="use the task's own question")
    parser.add_argument("--max-new-tokens", type=int, help="default: 80 (100 for mia)")
    parser.add_argument(
        "--worker", action="store_true", help="answer in the model worker process, as the viewer"
    )
    parser.add_argument("--json", action="store_true", help="print JSON (stable, for scripts)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    return parser


def _ask(args: argparse.Namespace) -> int:
    from birdview.core.box import Box
    from birdview.core.model_input import render_for_model

    spec = _spec(args)  # checked before anything slow is read or loaded
    if not args.question.strip() and args.task is None:
        raise ValueError("Unable to ask as there is no question; give one or --task")
    volume, plane, index = _slice(args)
    image = render_for_model(volume, plane, index)
    region = Box(plane, index, *args.box) if args.box else None
    spec = replace(spec, region=region, plane=plane, slice_index=index)
    if args.worker or getattr(sys, "frozen", False):
        return _ask_worker(args, image, spec)

    from birdview.inference.engine import Engine
    from birdview.inference.loader import load_checkpoint

    _quiet_transformers()
    loaded = load_checkpoint(
        args.model, adapter_dir=args.adapter, precision=args.precision, device=args.device
    )
    for notice in loaded.notices:
        logger.warning("%s", notice)
    answer = Engine(loaded).ask(image, spec)
    if args.json:
        print(json.dumps(_report(answer, loaded), indent=2))
    else:
        print(_plain(answer, loaded.family))
    return 0


def _spec(args: argparse.Namespace) -> AskSpec:
    """The ask as the arguments give it; where in the image comes once it is read. Nothing
    is streamed: the answer is printed whole."""
    task = _TASKS[args.task] if args.task else None
    return AskSpec(args.question, task=task, max_new_tokens=args.max_new_tokens, stream=False)


def _ask_worker(args: argparse.Namespace, image, spec: AskSpec) -> int:
    """The same question through `InferenceClient` (the worker process owns the model)."""
    from birdview.inference.client import InferenceClient
    from birdview.inference.protocol import WorkerConfig, WorkerFailure

    config = WorkerConfig(
        args.model, adapter_dir=args.adapter, precision=args.precision, device=args.device
    )
    with InferenceClient() as client:
        loaded = client.load(config).result()
        if isinstance(loaded, WorkerFailure):
            raise _error(loaded)
        for notice in loaded.notices:
            logger.warning("%s", notice)
        answer = client.ask(image, spec).result()
    if isinstance(answer, WorkerFailure):
        raise _error(answer)
    if args.json:
        name = os.path.basename(os.path.normpath(args.model))
        print(json.dumps(_report(answer, loaded, name), indent=2))
    else:
        print(_plain(answer, loaded.family))
    return 0


def _error(failure) -> InferenceError:
    """The failure as an exception of its kind (which sets the exit code), with its message
    alone: the "[kind]" prefix of `WorkerFailure.to_exception` means nothing to a user."""
    return type(failure.to_exception())(failure.message)


def _slice(args: argparse.Namespace):
    from birdview.core import geometry, io

    catalog = io.scan(args.image)
    if not catalog.entries:
        raise _no_image(args.image, catalog.problems)
    volume = geometry.to_canonical(io.load(catalog.entries[0]))
    plane = geometry.Plane(args.plane) if args.plane else geometry.acquisition_plane(volume)
    count = geometry.slice_count(volume, plane)
    index = count // 2 if args.slice is None else args.slice
    if not 0 <= index < count:
        raise ValueError(
            f"Unable to ask about slice {index!r} as the {plane.value} plane has slices "
            f"0 to {count - 1}"
        )
    return volume, plane, index


def _no_image(image: str, problems) -> BirdViewError:
    """The error for a path with no readable image: the reader's own message when the path
    is the one file that failed, else a summary naming the first failure."""
    from birdview.core.errors import VolumeReadError

    if not problems:
        return VolumeReadError(image, "it holds no image BirdView can read")
    first = problems[0]
    prefix = f"Unable to read {first.path!r} as "
    if len(problems) == 1 and first.message.startswith(prefix):
        return VolumeReadError(first.path, first.message[len(prefix) :])
    more = f" (and {len(problems) - 1} more files)" if len(problems) > 1 else ""
    return VolumeReadError(image, f"it holds no readable image: {first.message}{more}")


def _report(answer, loaded, name: str | None = None) -> dict:
    from birdview.core.assistant import readable_answer

    boxes = [
        {"label": b.label, "x1": b.x1_px, "y1": b.y1_px, "x2": b.x2_px, "y2": b.y2_px}
        for b in answer.boxes
    ]
    return {
        "text": readable_answer(answer.text, loaded.family),
        "reasoning": answer.reasoning,
        "raw": answer.raw,
        "boxes": boxes,
        "family": loaded.family,
        "model": loaded.name if name is None else name,
        "checkpoint_sha256": loaded.checkpoint_sha256,
        "precision": loaded.precision,
        "device": loaded.device,
        "seconds": round(answer.seconds, 3),
    }


def _plain(answer, family: str) -> str:
    """The answer as a person reads it, then each box in the slice's pixels."""
    from birdview.core.assistant import readable_answer

    lines = [readable_answer(answer.text, family)]
    for box in answer.boxes:
        edges = " ".join(f"{v:.0f}" for v in box.edges_px)
        lines.append(f"  box {box.label or '(unnamed)'}: {edges} (x1 y1 x2 y2, pixels)")
    return "\n".join(lines)


def _quiet_transformers() -> None:
    """No progress bars on the terminal."""
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
