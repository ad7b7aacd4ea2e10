"""The base model for a fit: loaded at the recipe's precision, with its processor's image
budget set, and the recipe's freeze policy or LoRA/QLoRA adapters applied.

Everything that differs between model families comes from the family's record in
`birdview.core.families` (`family_of`): the parts of a model by parameter name (the vision
encoder, its projector into the language model, the language model with its head: everything
else), the modules kept unquantised under QLoRA, where LoRA adapters go, and whether
conversations may be packed.
"""

from __future__ import annotations

import logging
import os
import re
from collections import Counter
from typing import Any

import torch

from birdview.core import families
from birdview.core.families import Family
from trainer._json_stream import read_json
from trainer.fit import attention
from trainer.fit.recipe import DataConfig, ModelConfig

__all__ = [
    "can_pack",
    "family_of",
    "load_for_training",
    "load_processor",
    "part_of",
    "rope_index_of",
    "trainable_summary",
]

logger = logging.getLogger(__name__)


def load_for_training(
    model_cfg: ModelConfig, data_cfg: DataConfig, *, weights: str | os.PathLike | None = None
) -> tuple[Any, Any]:
    """(model, processor) ready for the Trainer; the weights come from ``weights`` (a
    Trainer checkpoint of a full fine-tuning run being resumed) when given, else the base.

    Raises:
        FileNotFoundError: ``model.base`` is not a folder.
        ValueError: the recipe asks for something this base or machine cannot do, or a
            weights file is damaged.
    """
    from transformers import AutoModelForImageTextToText

    base = model_cfg.base
    if not base or not os.path.isdir(base):
        raise FileNotFoundError(
            f"Unable to load the base model as model.base {base!r} is not a folder; pass "
            "--override model.base=DIR"
        )
    family = _family_of_folder(base)
    processor = load_processor(base, data_cfg)
    if model_cfg.attention == attention.NAME:
        attention.register()
    # Full fine-tuning keeps fp32 master weights (bf16 is the Trainer's autocast), since
    # bf16 weights would round away updates of lr 2e-5; a frozen LoRA base can stay in bf16.
    low = model_cfg.precision == "bf16" and model_cfg.method != "full"
    dtype = torch.bfloat16 if low else torch.float32
    kwargs: dict[str, Any] = {
        "local_files_only": True,
        "use_safetensors": True,
        "dtype": dtype,
        "attn_implementation": model_cfg.attention,
    }
    if model_cfg.method == "qlora":
        kwargs["quantization_config"] = _nf4(dtype, family)
        kwargs["device_map"] = {"": _local_device()}
    model = _from_pretrained(AutoModelForImageTextToText, weights or base, kwargs)
    if model_cfg.method == "full":
        _freeze(model, model_cfg, family)
    else:
        model = _with_lora(model, model_cfg, family)
    logger.info("trainable parameters: %s", trainable_summary(model, family))
    return model, processor


def load_processor(base: str | os.PathLike, data_cfg: DataConfig) -> Any:
    """The base's processor with the recipe's image budget (no weights are read)."""
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(base, local_files_only=True)
    _set_image_budget(processor, data_cfg, _family_of_folder(base))
    return processor


def _from_pretrained(auto_class: Any, folder: str | os.PathLike, kwargs: dict[str, Any]) -> Any:
    """The model in ``folder``; a damaged weights file is refused in one line, not with
    the safetensors traceback (the app's loader does the same)."""
    from safetensors import SafetensorError

    try:
        return auto_class.from_pretrained(folder, **kwargs)
    except SafetensorError as exc:
        raise ValueError(
            f"Unable to load the model in '{folder}' as a weights file cannot be read "
            f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__}); copy it again"
        ) from exc


def family_of(model: Any) -> Family:
    """The registry's family of a loaded model (or of the model a peft wrapper holds).

    Raises:
        ValueError: BirdView knows no family of its ``config.model_type``.
    """
    return families.for_model_type(model.config.model_type)


def part_of(name: str, family: Family) -> str:
    """ "vision", "merger" (the projector) or "language" for a parameter name."""
    # The projector test comes first: some families nest it inside the vision encoder.
    if any(part in name for part in family.projector_parts):
        return "merger"
    if any(part in name for part in family.vision_parts):
        return "vision"
    return "language"


def trainable_summary(model: Any, family: Family) -> str:
    """Trainable / all parameters per part, e.g. "language 4.1M/4.1M, merger 0.3M/0.3M..."."""
    total: Counter = Counter()
    trainable: Counter = Counter()
    for name, param in model.named_parameters():
        part = "adapter" if "lora_" in name else part_of(name, family)
        total[part] += param.numel()
        if param.requires_grad:
            trainable[part] += param.numel()
    return ", ".join(
        f"{part} {trainable[part] / 1e6:.2f}M/{total[part] / 1e6:.2f}M" for part in sorted(total)
    )


def rope_index_of(model: Any) -> Any:
    """The function giving one conversation's position ids, which packing calls per
    conversation (the family's ``packing.position_function``).

    Raises:
        ValueError: the family refuses packing, or no module of the model has the function.
    """
    reason = can_pack(model)
    if reason:
        raise ValueError(f"Unable to pack conversations as {reason}")
    name = family_of(model).packing.position_function
    for module in model.modules():
        if hasattr(module, name):
            return getattr(module, name)
    raise ValueError(f"Unable to pack as {type(model).__name__} has no {name}; set data.pack=false")


def can_pack(model: Any) -> str | None:
    """None when conversations can share a sequence, else why not."""
    packing = family_of(model).packing
    if packing.refusal:
        return packing.refusal
    if not packing.position_function:
        return f"{model.config.model_type} declares no position function; set data.pack=false"
    config = getattr(model.config, "text_config", model.config)
    # Whatever the family says, a recurrent state would run across a packed row.
    if "linear_attention" in (getattr(config, "layer_types", None) or ()):
        return (
            f"{model.config.model_type} has linear-attention layers whose state runs across "
            "a packed row on the torch path; set data.pack=false"
        )
    return None


# -- helpers --------------------------------------------------------------------------------


def _family_of_folder(base: str | os.PathLike) -> Family:
    """The family of the checkpoint in ``base``, from its config.json.

    Raises:
        ValueError: config.json cannot be read or names no known model type.
    """
    config = read_json(os.path.join(base, "config.json"))
    return families.for_config(config)


def _set_image_budget(processor: Any, data_cfg: DataConfig, family: Family) -> None:
    """min_pixels/max_pixels on the image processor (0 keeps the base's).

    Raises:
        ValueError: a budget is set for a family whose processor resizes to a fixed size,
            or min_pixels is above max_pixels.
    """
    if not (data_cfg.min_pixels or data_cfg.max_pixels):
        return
    if family.image.resize != "smart":
        raise ValueError(
            f"Unable to set the image budget as {family.title} resizes every image to one "
            "fixed size; leave data.min_pixels and data.max_pixels at 0"
        )
    image_processor = processor.image_processor
    size = dict(getattr(image_processor, "size", None) or {})
    size = {k: v for k, v in size.items() if k in ("shortest_edge", "longest_edge") and v}
    if data_cfg.min_pixels:
        size["shortest_edge"] = data_cfg.min_pixels
    if data_cfg.max_pixels:
        size["longest_edge"] = data_cfg.max_pixels
    if size.get("shortest_edge", 0) > size.get("longest_edge", float("inf")):
        raise ValueError(
            f"Unable to set the image budget as min_pixels {size['shortest_edge']} is above "
            f"max_pixels {size['longest_edge']}"
        )
    image_processor.size = size
    logger.info("image budget: %d to %d pixels", size["shortest_edge"], size["longest_edge"])


def _freeze(model: Any, cfg: ModelConfig, family: Family) -> None:
    wanted = {
        "vision": cfg.train_vision,
        "merger": cfg.train_merger,
        "language": cfg.train_language,
    }
    for name, param in model.named_parameters():
        frozen = any(part in name for part in cfg.freeze)
        param.requires_grad_(wanted[part_of(name, family)] and not frozen)
    if not any(p.requires_grad for p in model.parameters()):
        raise ValueError("Unable to train as the recipe freezes every part of the model")


def _with_lora(model: Any, cfg: ModelConfig, family: Family) -> Any:
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    if cfg.train_vision:
        logger.warning(
            "model.train_vision is ignored with %s: adapters go on the language model", cfg.method
        )
    if cfg.method == "qlora":
        model = prepare_model_for_kbit_training(
            model, use_gradient_checkpointing=cfg.gradient_checkpointing
        )
    elif cfg.gradient_checkpointing:
        model.enable_input_require_grads()  # frozen embeddings: checkpoints need a grad input
    targets = "|".join(cfg.lora_targets)
    config = LoraConfig(
        r=cfg.lora_r,
        lora_alpha=cfg.lora_alpha,
        lora_dropout=cfg.lora_dropout,
        target_modules=rf".*{re.escape(family.language_model)}.*\.({targets})",
        modules_to_save=_projector_modules(family) if cfg.train_merger else None,
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, config)


def _projector_modules(family: Family) -> list[str]:
    """The projector's module names as peft's ``modules_to_save`` matches them: the end of
    a module's name, so without the parameter-name fragment's trailing dot."""
    return [part.rstrip(".") for part in family.projector_parts]


def _nf4(dtype: torch.dtype, family: Family) -> Any:
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=dtype,
        llm_int8_skip_modules=list(family.unquantised),
    )


def _local_device() -> str:
    if not torch.cuda.is_available():
        return "cpu"
    return f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
