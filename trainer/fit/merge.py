"""``birdview-train merge``: a LoRA/QLoRA adapter folded into its base → a full checkpoint.

The base is loaded unquantised (fp32) even for a QLoRA adapter, the adapter's weights are
added in (``merge_and_unload``), and the result is saved as safetensors with the processor the
adapter was trained with (the base's when the adapter folder has none) and a ``birdview.json``
marked ``"kind": "merged"``.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from trainer.checkpoint_card import write_checkpoint_card
from trainer.fit.checkpoint import read_metadata, write_metadata

__all__ = ["check_merge", "merge_adapter"]

logger = logging.getLogger(__name__)

_PROCESSOR_FILES = ("preprocessor_config.json", "processor_config.json", "tokenizer_config.json")


def merge_adapter(
    base: str | os.PathLike, adapter: str | os.PathLike, out: str | os.PathLike
) -> Path:
    """Write the merged checkpoint to ``out`` (a new or empty folder).

    Raises:
        FileNotFoundError: ``base`` has no config.json or ``adapter`` no adapter_config.json.
        ValueError: ``out`` is a file or a folder that is not empty, or the adapter does not
            fit the base.
    """
    base, adapter, out = Path(base), Path(adapter), Path(out)
    check_merge(base, adapter, out)  # before the heavy imports: a refusal takes a moment
    import torch
    from peft import PeftModel
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from birdview.core import families

    model = AutoModelForImageTextToText.from_pretrained(
        base, local_files_only=True, use_safetensors=True, dtype=torch.float32
    )
    try:
        model = PeftModel.from_pretrained(model, adapter, is_trainable=False)
    except (RuntimeError, ValueError, KeyError) as exc:
        raise ValueError(
            f"Unable to merge as the adapter '{adapter}' does not fit the base '{base}' ({exc})"
        ) from exc
    merged = model.merge_and_unload()
    out.mkdir(parents=True, exist_ok=True)
    merged.save_pretrained(out, safe_serialization=True)
    has_processor = any((adapter / name).is_file() for name in _PROCESSOR_FILES)
    AutoProcessor.from_pretrained(
        adapter if has_processor else base, local_files_only=True
    ).save_pretrained(out)
    metadata = read_metadata(adapter)
    metadata.pop("created", None)
    write_metadata(
        out,
        **{
            **metadata,
            "kind": "merged",
            "family": families.for_model_type(merged.config.model_type).key,
            "model_type": merged.config.model_type,
            "base": str(base.resolve()),
            "adapter": str(adapter.resolve()),
        },
    )
    write_checkpoint_card(out)
    logger.info("merged '%s' into '%s': wrote %s", adapter, base, out)
    return out


def check_merge(base: Path, adapter: Path, out: Path) -> None:
    """What `merge_adapter` checks before it loads anything (same Raises)."""
    if not (base / "config.json").is_file():
        raise FileNotFoundError(f"Unable to merge as the base '{base}' has no config.json")
    if not (adapter / "adapter_config.json").is_file():
        raise FileNotFoundError(
            f"Unable to merge as '{adapter}' has no adapter_config.json; choose the output "
            "folder of a bird-lora or bird-qlora run"
        )
    if out.exists() and not out.is_dir():
        raise ValueError(f"Unable to merge into '{out}' as it is a file, not a folder")
    if out.is_dir() and any(out.iterdir()):
        raise ValueError(f"Unable to merge into '{out}' as the folder is not empty")
