"""``birdview model-info DIR [--json]``: what a checkpoint folder holds and whether it fits on
this machine, without loading the model.

It reports the model family (`birdview.core.families.for_config`), the parameter count read
from the safetensors headers (no weights are read), an estimate of the memory each precision
needs against this machine's free memory, which modules the family keeps unquantised under
nf4/int8, whether a chat template and a processor are there, and the model card
(`birdview.core.model_card`). Checkpoints that need their own Python code (``auto_map`` in
config.json, or a family that only exists as remote code) are refused, because loading them
would run that code.

Exit codes: 0 described (a damaged card is reported, not fatal: the model is still usable),
2 the folder is missing, damaged or refused, always with a one-line message.

Memory estimates are weights only, in bytes per parameter: fp32 4, bf16 2; int8 1 and nf4
0.5 for the language model's linear weights, with the family's unquantised modules
(vision tower, projector, output head), embeddings and 1-D weights at bf16 (2). A precision
is said to fit when its estimate plus `HEADROOM` fits the free memory: activations, the
image's tokens and the CUDA context need the rest.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import math
import sys
from pathlib import Path
from typing import Any

from birdview.core import families
from birdview.core.families import Family
from birdview.core.io._limits import available_memory_bytes, format_bytes
from birdview.core.model_card import read_card
from birdview.inference._checkpoint_files import safetensors_problem, weight_files

__all__ = ["HEADROOM", "add_parser", "describe_checkpoint", "format_report", "main", "run"]

logger = logging.getLogger(__name__)

HEADROOM = 1.2
_MAX_CONFIG_BYTES = 4 * 1024**2
_MAX_HEADER_BYTES = 100_000_000
_QUANTISED_BYTES = {"fp32": None, "bf16": None, "int8": 1.0, "nf4": 0.5}
_FULL_BYTES = {"fp32": 4.0, "bf16": 2.0, "int8": 2.0, "nf4": 2.0}
_TEMPLATE_FILES = ("chat_template.jinja", "chat_template.json")
_PROCESSOR_FILES = ("preprocessor_config.json", "processor_config.json")


class _Refused(ValueError):
    """The folder is missing, damaged, or not one BirdView will load."""


# -- the command ----------------------------------------------------------------------------


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add ``model-info`` to an ``argparse`` subparsers object; its ``run`` is `run`."""
    parser = subparsers.add_parser(
        "model-info",
        help="describe a checkpoint folder without loading it",
        description="Describe a checkpoint folder: family, size, memory, template, card.",
    )
    parser.add_argument("folder", help="a checkpoint folder (config.json, *.safetensors)")
    parser.add_argument("--json", action="store_true", help="print JSON (stable, for scripts)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    parser.set_defaults(run=run)
    return parser


def run(args: argparse.Namespace) -> int:
    """Print the report of ``args.folder``; 0, or 2 with one line on stderr."""
    from birdview._logging import configure_logging

    configure_logging(verbose=args.verbose, to_file=False)
    try:
        report = describe_checkpoint(args.folder)
    except _Refused as exc:
        print(f"birdview model-info: error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    return 0


def main(argv: list[str] | None = None) -> int:
    """``birdview model-info`` with its own arguments (``argv`` after the command's name)."""
    parser = argparse.ArgumentParser(prog="birdview")
    add_parser(parser.add_subparsers())
    args = parser.parse_args(["model-info", *(sys.argv[1:] if argv is None else argv)])
    return args.run(args)


# -- the report -----------------------------------------------------------------------------


def describe_checkpoint(folder: str | Path) -> dict[str, Any]:
    """What `format_report` prints, as JSON-ready data.

    Raises:
        ValueError: the folder is missing or damaged (config.json, a safetensors header),
            names a model type BirdView does not know, or needs remote code.
    """
    folder = Path(folder)
    config = _read_config(folder)
    family = _family(folder, config)
    tensors = _tensors(folder)
    counts = _parameter_counts(tensors, family)
    report = {
        "folder": str(folder),
        "family": {"key": family.key, "title": family.title},
        "model_type": str(config.get("model_type", "")),
        "parameters": counts,
        "weights": {
            "files": len(weight_files(folder)),
            "bytes": sum(p.stat().st_size for p in weight_files(folder)),
            "dtypes": _dtypes(tensors),
        },
        "memory": _memory(counts),
        "unquantised_under_nf4": list(family.unquantised),
        "vision_tower_unquantised": _vision_unquantised(family),
        "chat_template": _chat_template(folder),
        "processor": _first_file(folder, _PROCESSOR_FILES),
        **_card(folder),
    }
    logger.info("described %s: %s parameters", folder.name, counts["total"])
    return report


def _read_config(folder: Path) -> dict[str, Any]:
    if not folder.is_dir():
        what = "does not exist" if not folder.exists() else "is not a folder"
        raise _Refused(f"Unable to describe '{folder}' as it {what}")
    path = folder / "config.json"
    if not path.is_file():
        raise _Refused(
            f"Unable to describe '{folder}' as it has no config.json; choose a checkpoint "
            "folder (an adapter folder needs its base)"
        )
    raw = path.read_bytes()[: _MAX_CONFIG_BYTES + 1]
    if len(raw) > _MAX_CONFIG_BYTES:
        raise _Refused(f"Unable to describe '{folder}' as its config.json is over 4 MiB")
    try:
        config = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise _Refused(
            f"Unable to describe '{folder}' as it is damaged: config.json is not JSON"
        ) from exc
    if not isinstance(config, dict):
        raise _Refused(f"Unable to describe '{folder}' as its config.json is not a JSON object")
    return config


def _native_titles() -> str:
    return ", ".join(f.title for f in families.all_families() if not f.remote_code)


def _family(folder: Path, config: dict[str, Any]) -> Family:
    """The checkpoint's family; refused when it needs its own code."""
    advice = (
        "remote code runs arbitrary Python on this machine, so BirdView does not load it; use "
        f"a checkpoint of a family transformers supports natively ({_native_titles()}), or "
        "convert this one to such a family"
    )
    if "auto_map" in config:
        raise _Refused(
            f"Unable to use '{folder}' as its config.json has 'auto_map': it needs the "
            f"checkpoint's own Python code; {advice}"
        )
    try:
        family = families.for_config(config)
    except ValueError as exc:
        known = ", ".join(sorted(t for f in families.all_families() for t in f.model_types))
        raise _Refused(
            f"Unable to describe '{folder}' as its config.json names model_type "
            f"{config.get('model_type')!r}, which is not one BirdView knows ({known})"
        ) from exc
    if family.remote_code:
        raise _Refused(
            f"Unable to use '{folder}' as {family.title} checkpoints need their own Python "
            f"code; {advice}"
        )
    return family


def _tensors(folder: Path) -> dict[str, tuple[str, tuple[int, ...]]]:
    """name → (dtype, shape) of every tensor in the folder's safetensors headers."""
    files = weight_files(folder)
    if not files:
        raise _Refused(
            f"Unable to describe '{folder}' as it holds no .safetensors weights (BirdView "
            "loads safetensors only: .bin/.pt files are pickles, which can run code)"
        )
    tensors: dict[str, tuple[str, tuple[int, ...]]] = {}
    for path in files:
        problem = safetensors_problem(path)
        if problem is not None:
            raise _Refused(f"Unable to describe '{folder}' as it is damaged: {problem}")
        tensors.update(_header(path))
    return tensors


def _header(path: Path) -> dict[str, tuple[str, tuple[int, ...]]]:
    with path.open("rb") as file:
        length = int.from_bytes(file.read(8), "little")
        header = json.loads(file.read(min(length, _MAX_HEADER_BYTES)))
    header.pop("__metadata__", None)
    return {
        name: (str(e["dtype"]), tuple(int(n) for n in e["shape"])) for name, e in header.items()
    }


def _kept_full(name: str, shape: tuple[int, ...], family: Family) -> bool:
    """Whether nf4/int8 leave the tensor at bf16: the family's unquantised modules (by module
    path, or by the vision/projector name parts older checkpoint layouts use), embeddings,
    and anything that is not a 2-D linear weight."""
    if any(name == path or name.startswith(path + ".") for path in family.unquantised):
        return True
    if any(part in name for part in (*family.vision_parts, *family.projector_parts)):
        return True
    return len(shape) != 2 or "embed" in name


def _parameter_counts(tensors: dict, family: Family) -> dict[str, int]:
    total = kept = vision = 0
    for name, (_, shape) in tensors.items():
        count = math.prod(shape)
        total += count
        kept += count if _kept_full(name, shape, family) else 0
        parts = (*family.unquantised, *family.vision_parts, *family.projector_parts)
        vision += count if any(part in name for part in parts if part != "lm_head") else 0
    return {"total": total, "kept_full_precision": kept, "vision_and_projector": vision}


def _dtypes(tensors: dict) -> dict[str, int]:
    found: dict[str, int] = {}
    for dtype, shape in tensors.values():
        found[dtype] = found.get(dtype, 0) + math.prod(shape)
    return dict(sorted(found.items()))


def _memory(counts: dict[str, int]) -> dict[str, Any]:
    free_ram = available_memory_bytes()
    gpus = _gpus()
    best_gpu = max((gpu["free_bytes"] for gpu in gpus), default=None)
    precisions = {}
    for precision, quantised in _QUANTISED_BYTES.items():
        full = _FULL_BYTES[precision]
        if quantised is None:
            needed = counts["total"] * full
        else:
            kept = counts["kept_full_precision"]
            needed = kept * full + (counts["total"] - kept) * quantised
        precisions[precision] = {
            "bytes": int(needed),
            "fits_ram": None if free_ram is None else needed * HEADROOM <= free_ram,
            "fits_gpu": None if best_gpu is None else needed * HEADROOM <= best_gpu,
        }
    return {"free_ram_bytes": free_ram, "gpus": gpus, "precisions": precisions}


def _gpus() -> list[dict[str, Any]]:
    """Each CUDA device's name and free memory; none without torch or CUDA."""
    if importlib.util.find_spec("torch") is None:
        return []
    import torch

    if not torch.cuda.is_available():
        return []
    found = []
    for index in range(torch.cuda.device_count()):
        free, total = torch.cuda.mem_get_info(index)
        name = torch.cuda.get_device_name(index)
        found.append({"index": index, "name": name, "free_bytes": free, "total_bytes": total})
    return found


def _vision_unquantised(family: Family) -> bool:
    """Whether the family's unquantised module paths include its vision tower."""
    stems = [part.strip(".") for part in family.vision_parts]
    return any(stem in path for path in family.unquantised for stem in stems)


def _first_file(folder: Path, names: tuple[str, ...]) -> str | None:
    return next((name for name in names if (folder / name).is_file()), None)


def _chat_template(folder: Path) -> str | None:
    """The file that holds the chat template, or None."""
    found = _first_file(folder, _TEMPLATE_FILES)
    if found:
        return found
    try:
        tokenizer = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    has = isinstance(tokenizer, dict) and tokenizer.get("chat_template")
    return "tokenizer_config.json" if has else None


def _card(folder: Path) -> dict[str, Any]:
    try:
        card = read_card(folder)
    except ValueError as exc:
        return {"card": None, "card_summary": "", "card_problem": str(exc)}
    if card is None:
        return {"card": None, "card_summary": "", "card_problem": ""}
    return {"card": card.to_dict(), "card_summary": card.summary(), "card_problem": ""}


# -- text ----------------------------------------------------------------------------------


def format_report(report: dict[str, Any]) -> str:
    """The report for people."""
    family, counts = report["family"], report["parameters"]
    card = report["card"]
    lines = [
        f"{card['name'] if card else Path(report['folder']).name} ({report['folder']})",
        f"family          {family['title']} (key {family['key']}, "
        f"model_type {report['model_type']})",
        f"parameters      {_count(counts['total'])}, of which vision tower and projector "
        f"{_count(counts['vision_and_projector'])}",
        f"weights         {format_bytes(report['weights']['bytes'])} in "
        f"{report['weights']['files']} file(s), " + ", ".join(report["weights"]["dtypes"]),
        *_memory_lines(report["memory"]),
        *_unquantised_lines(report),
        f"chat template   {report['chat_template'] or 'missing: answers cannot be prompted'}",
        f"processor       {report['processor'] or 'missing: images cannot be prepared'}",
        *_card_lines(report),
    ]
    return "\n".join(lines)


def _unquantised_lines(report: dict[str, Any]) -> list[str]:
    kept = ", ".join(report["unquantised_under_nf4"]) or "nothing"
    if report["vision_tower_unquantised"]:
        return [f"nf4/int8        the vision tower stays unquantised (bf16), with: {kept}"]
    return [f"nf4/int8        the vision tower is quantised too; kept in bf16: {kept}"]


def _count(n: int) -> str:
    for unit, size in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size:
            return f"{n / size:.2f} {unit}"
    return str(n)


def _memory_lines(memory: dict[str, Any]) -> list[str]:
    ram = memory["free_ram_bytes"]
    gpus = memory["gpus"]
    gpu_text = (
        ", ".join(f"{g['name']} {format_bytes(g['free_bytes'])} free" for g in gpus)
        if gpus
        else "no CUDA GPU"
    )
    ram_text = format_bytes(ram) if ram is not None else "unknown"
    lines = [f"memory          estimated, weights only; RAM {ram_text} free; {gpu_text}"]
    for precision, row in memory["precisions"].items():
        fits = [
            place
            for place, ok in (("RAM", row["fits_ram"]), ("GPU", row["fits_gpu"]))
            if ok is True
        ]
        verdict = "fits in " + " and ".join(fits) if fits else "does not fit here"
        lines.append(f"  {precision:<6}        ~{format_bytes(row['bytes'])}: {verdict}")
    return lines


def _card_lines(report: dict[str, Any]) -> list[str]:
    if report["card_problem"]:
        return [f"card            unreadable: {report['card_problem']}"]
    card = report["card"]
    if card is None:
        return ["card            none (no birdview.json card: nothing said about its training)"]
    lines = [f"card            {report['card_summary']}"]
    if card.get("description"):
        lines.append(f"                {card['description']}")
    return lines
