"""What a fit leaves in its output folder, and the small BirdView metadata file.

::

    OUT/
      config.json, model.safetensors, ...   the checkpoint (or adapter_config.json and
                                            adapter_model.safetensors for LoRA/QLoRA)
      tokenizer/processor files             with the image budget the model was trained with
      birdview.json                         family, box format, recipe, data card, metrics
      recipe.yaml                           the resolved recipe (what --resume checks)
      checkpoints/checkpoint-N/             the Trainer's resumable state
      logs/train.csv, logs/eval.csv, logs/loss.png
      eval/epoch-K/*.jsonl                  held-out predictions per epoch

``birdview.json`` tells a reader how to parse the model without loading it: ``family`` is the
base's key in `birdview.core.families`, whose codec reads the boxes it writes.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import logging
import os
import re
import subprocess
from pathlib import Path
from typing import Any

from birdview.core.files import write_atomic
from trainer._json_stream import read_json

__all__ = [
    "METADATA_FILE",
    "RECIPE_FILE",
    "data_summary",
    "git_sha",
    "latest_checkpoint",
    "read_metadata",
    "write_metadata",
]

logger = logging.getLogger(__name__)

METADATA_FILE = "birdview.json"
RECIPE_FILE = "recipe.yaml"
FORMAT_VERSION = 1
_CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")


def latest_checkpoint(out: str | os.PathLike) -> Path | None:
    """The Trainer checkpoint with the most steps under ``out/checkpoints``, if any."""
    folder = Path(out) / "checkpoints"
    if not folder.is_dir():
        return None
    found = [
        (int(m.group(1)), p)
        for p in folder.iterdir()
        if p.is_dir()
        and (m := _CHECKPOINT_RE.match(p.name))
        and (p / "trainer_state.json").is_file()
    ]
    return max(found)[1] if found else None


def write_metadata(out: str | os.PathLike, **fields: Any) -> Path:
    """``birdview.json`` in ``out``: ``fields`` plus the format version and the time."""
    data = {
        "format": "birdview-checkpoint",
        "version": FORMAT_VERSION,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        **fields,
    }
    path = Path(out) / METADATA_FILE
    text = json.dumps(data, indent=2, ensure_ascii=False, default=str)
    write_atomic(path, text, mode=0o666)
    return path


def read_metadata(folder: str | os.PathLike) -> dict[str, Any]:
    """The folder's ``birdview.json``, or {} when it has none or it cannot be read."""
    path = Path(folder) / METADATA_FILE
    try:
        data = read_json(path)
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def data_summary(train_json: Path, items: int) -> dict[str, Any]:
    """The training file, its SHA-256, the items used and the data card beside it (if any)."""
    digest = hashlib.sha256()
    with open(train_json, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    summary: dict[str, Any] = {
        "train": str(train_json),
        "sha256": digest.hexdigest(),
        "items": items,
    }
    card = train_json.parent / "data_card.json"
    if card.is_file():
        try:
            summary["card"] = read_json(card)
        except (OSError, ValueError):
            logger.warning("could not read %s", card)
    return summary


def git_sha() -> str:
    """The commit of the trainer's source tree ("" outside a git checkout)."""
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""
