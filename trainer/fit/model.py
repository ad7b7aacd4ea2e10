"""The base model for a fit: loaded at the recipe's precision, with its processor's image
budget set, and the recipe's freeze policy or LoRA/QLoRA adapters applied.

Parts of a Qwen-VL-family model, by parameter name: the vision encoder (``visual.*``), its
merger/projector into the language model (``visual.merger``, Qwen3-VL's
``visual.deepstack_merger_list``), and the language model with its head (everything else).
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from typing import Any

import torch

from trainer.fit import attention
from trainer.fit.recipe import DataConfig, ModelConfig

__all__ = ["can_pack", "load_for_training", "part_of", "rope_index_of", "trainable_summary"]

logger = logging.getLogger(__name__)

# Kept out of 4-bit quantisation, as the app's nf4 loading does (birdview.inference.loader).
_SKIPPED_PARTS = ("visual", "vision_tower", "multi_modal_projector", "merger")
_UNQUANTISED = [*_SKIPPED_PARTS, *(f".*{part}" for part in _SKIPPED_PARTS), "lm_head"]
_MERGERS = ["merger", "deepstack_merger_list"]


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
    from transformers import AutoModelForImageTextToText, AutoProcessor

    base = model_cfg.base
    if not base or not os.path.isdir(base):
        raise FileNotFoundError(
            f"Unable to load the base model as model.base {base!r} is not a folder; pass "
            "--override model.base=DIR"
        )
    processor = AutoProcessor.from_pretrained(base, local_files_only=True)
    _set_image_budget(processor, data_cfg)
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
        kwargs["quantization_config"] = _nf4(dtype)
        kwargs["device_map"] = {"": _local_device()}
    model = _from_pretrained(AutoModelForImageTextToText, weights or base, kwargs)
    if model_cfg.method == "full":
        _freeze(model, model_cfg)
    else:
        model = _with_lora(model, model_cfg)
    logger.info("trainable parameters: %s", trainable_summary(model))
    return model, processor


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


def part_of(name: str) -> str:
    """ "vision", "merger" or "language" for a parameter name."""
    if "visual." not in name and "vision_tower." not in name:
        return "language"
    return "merger" if any(m in name for m in _MERGERS) else "vision"


def trainable_summary(model: Any) -> str:
    """Trainable / all parameters per part, e.g. "language 4.1M/4.1M, merger 0.3M/0.3M..."."""
    total: Counter = Counter()
    trainable: Counter = Counter()
    for name, param in model.named_parameters():
        part = "adapter" if "lora_" in name else part_of(name)
        total[part] += param.numel()
        if param.requires_grad:
            trainable[part] += param.numel()
    return ", ".join(
        f"{part} {trainable[part] / 1e6:.2f}M/{total[part] / 1e6:.2f}M" for part in sorted(total)
    )


def rope_index_of(model: Any) -> Any:
    """The model's multimodal RoPE position function (``get_rope_index``) for packing."""
    for module in model.modules():
        if hasattr(module, "get_rope_index"):
            return module.get_rope_index
    raise ValueError(
        f"Unable to pack as {type(model).__name__} has no get_rope_index; set data.pack=false"
    )


def can_pack(model: Any) -> str | None:
    """None when conversations can share a sequence, else why not."""
    config = getattr(model.config, "text_config", model.config)
    if "linear_attention" in (getattr(config, "layer_types", None) or ()):
        return (
            f"{model.config.model_type} has linear-attention layers whose state runs across "
            "a packed row on the torch path; set data.pack=false"
        )
    return None


# -- helpers --------------------------------------------------------------------------------


def _set_image_budget(processor: Any, data_cfg: DataConfig) -> None:
    """min_pixels/max_pixels on the image processor (0 keeps the base's)."""
    image_processor = processor.image_processor
    size = dict(getattr(image_processor, "size", None) or {})
    size = {k: v for k, v in size.items() if k in ("shortest_edge", "longest_edge") and v}
    if data_cfg.min_pixels:
        size["shortest_edge"] = data_cfg.min_pixels
    if data_cfg.max_pixels:
        size["longest_edge"] = data_cfg.max_pixels
    if data_cfg.min_pixels or data_cfg.max_pixels:
        if size.get("shortest_edge", 0) > size.get("longest_edge", float("inf")):
            raise ValueError(
                f"Unable to set the image budget as min_pixels {size['shortest_edge']} is above "
                f"max_pixels {size['longest_edge']}"
            )
        image_processor.size = size
        logger.info("image budget: %d to %d pixels", size["shortest_edge"], size["longest_edge"])


def _freeze(model: Any, cfg: ModelConfig) -> None:
    wanted = {
        "vision": cfg.train_vision,
        "merger": cfg.train_merger,
        "language": cfg.train_language,
    }
    for name, param in model.named_parameters():
        frozen = any(part in name for part in cfg.freeze)
        param.requires_grad_(wanted[part_of(name)] and not frozen)
    if not any(p.requires_grad for p in model.parameters()):
        raise ValueError("Unable to train as the recipe freezes every part of the model")


def _with_lora(model: Any, cfg: ModelConfig) -> Any:
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
        target_modules=rf".*language_model.*\.({targets})",
        modules_to_save=list(_MERGERS) if cfg.train_merger else None,
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, config)


def _nf4(dtype: torch.dtype) -> Any:
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=dtype,
        llm_int8_skip_modules=list(_UNQUANTISED),
    )


def _local_device() -> str:
    if not torch.cuda.is_available():
        return "cpu"
    return f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
