"""Loading a local checkpoint of a registered model family (Hugging Face layout) for inference.

Always offline and safetensors only: a checkpoint folder is opened with ``local_files_only``
and ``use_safetensors``, and a folder holding only pickled weights (``*.bin``, ``*.pt``) is
refused, because unpickling runs arbitrary code. Remote code runs only when the caller asks.

A damaged checkpoint (a safetensors file cut short, a config.json that is not JSON or holds a
value of the wrong type) is reported as "Unable to load the checkpoint at '<dir>' as it is
damaged: <cause>", never as transformers' own traceback.

Precision: ``nf4`` (4-bit bitsandbytes with double quantisation) and ``int8`` quantise the
language model only; the vision tower, its projector and ``lm_head`` stay unquantised: the
family's ``unquantised`` module paths, which transformers 5 matches from the start of a
module's dotted name (a bare "vision_tower" would not keep Gemma 3's tower whole).
``auto`` is nf4 on CUDA and fp32 on the CPU (these CPUs have no fast bf16).
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from birdview.core import families
from birdview.core.families import Family
from birdview.core.model_card import ModelCard, read_card
from birdview.inference._checkpoint_files import (
    BackgroundHash,
    hashed_files,
    safetensors_problem,
    weight_files,
)
from birdview.inference.errors import ModelLoadError
from birdview.inference.offline import go_offline

__all__ = ["PRECISIONS", "DEVICES", "LoadedModel", "load_checkpoint", "quantised_module_names"]

logger = logging.getLogger(__name__)

PRECISIONS = ("auto", "nf4", "int8", "bf16", "fp32")
DEVICES = ("auto", "cpu", "cuda")

_PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
_RESTORE = "; restore it from the original checkpoint"


@dataclass
class LoadedModel:
    """A model ready for `Engine`.

    Attributes:
        model: the transformers model (a peft model when an adapter was loaded), in eval mode.
        processor: its processor, with left padding for batched generation.
        family: the family's key in `birdview.core.families`.
        model_type: ``config.model_type``.
        precision: what was loaded: "nf4", "int8", "bf16" or "fp32".
        device: "cpu" or "cuda".
        notices: things the user should know ("No CUDA device: running on the CPU").
        name: the checkpoint folder's name (plus the adapter's), for display.
        load_seconds: how long loading took.
        checkpoint_sha256: SHA-256 of config.json and the safetensors files (and the
            adapter's), see `_checkpoint_files.checkpoint_sha256`; "" if unreadable.
        card: the model card beside the weights (the adapter's, else the checkpoint's):
            what it was trained on and the family defaults it changes; None without one.
    """

    model: Any
    processor: Any
    family: str
    model_type: str
    precision: str
    device: str
    notices: list[str] = field(default_factory=list)
    name: str = ""
    load_seconds: float = 0.0
    checkpoint_sha256: str = ""
    card: ModelCard | None = None


def load_checkpoint(
    model_dir: str | os.PathLike,
    *,
    adapter_dir: str | os.PathLike | None = None,
    precision: str = "auto",
    device: str = "auto",
    trust_remote_code: bool = False,
) -> LoadedModel:
    """Load the checkpoint in ``model_dir`` (and a peft adapter from ``adapter_dir``).

    Raises:
        ModelLoadError: the folder is missing, has no config.json or no safetensors weights,
            holds only pickled weights, is damaged (a weights file cut short, a config.json
            that is not JSON or holds a wrong-typed value), is not of a registered family,
            the adapter was made for another base model, the device is missing, or memory ran
            out.
        ValueError: ``precision`` or ``device`` is not one of `PRECISIONS` / `DEVICES`.
    """
    started = time.perf_counter()
    go_offline()
    _check_choice("precision", precision, PRECISIONS)
    _check_choice("device", device, DEVICES)
    folder = Path(model_dir)
    adapter = None if adapter_dir is None else Path(adapter_dir)
    config = _read_config(folder)
    if adapter is not None:
        _check_adapter_files(adapter)
    model_type = str(config.get("model_type", ""))
    family = _family(folder, model_type, trust_remote_code)
    card = _card(folder, adapter)
    # Hashing reads every byte (seconds for a large checkpoint): overlap it with the load.
    hashing = BackgroundHash(hashed_files(folder, adapter))
    try:
        notices: list[str] = []
        device = _resolve_device(folder, device, notices)
        if precision == "auto":
            precision = "nf4" if device == "cuda" else "fp32"
        _check_config_values(folder, trust_remote_code)
        processor = _load_processor(folder, trust_remote_code)
        model = _load_model(folder, precision, device, trust_remote_code, family)
        if adapter is not None:
            model = _load_adapter(model, folder, config, adapter)
    except BaseException:
        hashing.cancel()
        raise
    model.eval()
    name = folder.name if adapter is None else f"{folder.name} + {adapter.name}"
    digest = hashing.result()
    seconds = time.perf_counter() - started
    logger.info("loaded a %s model (%s, %s) in %.2f s", model_type, precision, device, seconds)
    # A card may name the family whose text conventions a fine-tune follows; the weights
    # were still built (and quantised) as config.json says.
    key = card.family if card is not None and card.family else family.key
    return LoadedModel(
        model, processor, key, model_type, precision, device, notices, name, seconds, digest, card
    )


def quantised_module_names(model: Any) -> list[str]:
    """Dotted names of the bitsandbytes 4-bit and 8-bit linear layers in ``model``."""
    import bitsandbytes as bnb

    kinds = (bnb.nn.Linear4bit, bnb.nn.Linear8bitLt)
    return [name for name, module in model.named_modules() if isinstance(module, kinds)]


# -- checks ---------------------------------------------------------------------------------


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"Unable to load a model as {name} {value!r} is not one of {choices}")


def _fail(folder: Path, reason: str) -> ModelLoadError:
    return ModelLoadError(f"Unable to load a model from '{folder}' as {reason}")


def _damaged(folder: Path, cause: str, what: str = "checkpoint") -> ModelLoadError:
    return ModelLoadError(f"Unable to load the {what} at '{folder}' as it is damaged: {cause}")


def _one_line(exc: BaseException, limit: int = 200) -> str:
    """An error's message on one line, cut at ``limit`` characters (a config value may be
    long)."""
    text = " ".join(str(exc).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _read_config(folder: Path) -> dict[str, Any]:
    if not folder.exists():
        raise _fail(folder, "the folder does not exist")
    if not folder.is_dir():
        raise _fail(folder, "it is not a folder; choose the checkpoint folder")
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise _fail(folder, "it has no config.json; choose a Hugging Face checkpoint folder")
    try:
        text = config_path.read_text(encoding="utf-8")
    except OSError as exc:
        raise _fail(folder, f"its config.json cannot be read ({exc})") from exc
    try:
        config = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _damaged(folder, f"config.json is not valid JSON ({exc}){_RESTORE}") from exc
    if not isinstance(config, dict):
        raise _damaged(folder, f"config.json is not a JSON object{_RESTORE}")
    _check_weights(folder)
    return config


def _check_weights(folder: Path) -> None:
    names = [p.name for p in folder.iterdir() if p.is_file()]
    if any(n.endswith(".safetensors") for n in names):
        _check_whole(folder, "checkpoint")
        return
    pickled = sorted(n for n in names if n.endswith(_PICKLE_SUFFIXES))
    if pickled:
        raise _fail(
            folder,
            f"its weights are pickled ({pickled[0]!r}), which could run arbitrary code; "
            "convert them to safetensors first",
        )
    raise _fail(folder, "it holds no weights (*.safetensors)")


def _check_whole(folder: Path, what: str) -> None:
    """Every safetensors file in ``folder`` is as long as its header says (milliseconds: only
    the headers are read), so a file cut short is named before transformers opens it."""
    for path in weight_files(folder):
        try:
            problem = safetensors_problem(path)
        except OSError as exc:
            raise _fail(folder, f"{path.name} cannot be read ({exc})") from exc
        if problem is not None:
            raise _damaged(folder, f"{problem}; copy or download it again", what)


def _check_adapter_files(adapter: Path) -> None:
    if not (adapter / "adapter_config.json").is_file():
        raise _fail(adapter, "it has no adapter_config.json; choose a peft adapter folder")
    if not (adapter / "adapter_model.safetensors").is_file():
        raise _fail(adapter, "it holds no adapter_model.safetensors (pickled adapters refused)")
    _check_whole(adapter, "adapter")


def _check_config_values(folder: Path, trust_remote_code: bool) -> None:
    """transformers checks config.json's types (``"hidden_size": "big"``); say so plainly."""
    from huggingface_hub.errors import StrictDataclassError
    from transformers import AutoConfig

    try:
        AutoConfig.from_pretrained(
            folder, local_files_only=True, trust_remote_code=trust_remote_code
        )
    except StrictDataclassError as exc:
        cause = _one_line(exc.__cause__ or exc)
        raise _damaged(folder, f"config.json holds an invalid value ({cause}){_RESTORE}") from exc
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise _fail(folder, f"transformers could not read its config.json ({exc})") from exc


def _family(folder: Path, model_type: str, trust_remote_code: bool) -> Family:
    try:
        family = families.for_model_type(model_type)
    except ValueError as exc:
        titles = ", ".join(f.title for f in families.all_families() if not f.remote_code)
        raise _fail(
            folder,
            f"model_type {model_type!r} is not a supported model family; BirdView runs {titles}",
        ) from exc
    if family.remote_code and not trust_remote_code:
        raise _fail(
            folder,
            f"model_type {model_type!r} ({family.title}) needs its own remote code; allow "
            "remote code only if you trust this checkpoint",
        )
    return family


def _card(folder: Path, adapter: Path | None) -> ModelCard | None:
    """The adapter's card when it has one (it says what the fine-tune learnt), else the
    checkpoint's."""
    for place in (adapter, folder):
        if place is None:
            continue
        try:
            card = read_card(place)
        except ValueError as exc:
            raise ModelLoadError(f"{exc}; fix or remove the file to load the model") from exc
        if card is not None:
            return card
    return None


def _resolve_device(folder: Path, device: str, notices: list[str]) -> str:
    import torch

    has_cuda = torch.cuda.is_available()
    if device == "cuda" and not has_cuda:
        raise _fail(folder, "device 'cuda' was asked for but no CUDA device is available")
    if device == "auto":
        device = "cuda" if has_cuda else "cpu"
        if not has_cuda:
            notices.append("No CUDA device: running on the CPU")
    return device


# -- loading --------------------------------------------------------------------------------


def _load_processor(folder: Path, trust_remote_code: bool) -> Any:
    from transformers import AutoProcessor

    try:
        processor = AutoProcessor.from_pretrained(
            folder, local_files_only=True, trust_remote_code=trust_remote_code
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise _fail(folder, f"its processor cannot be read ({exc})") from exc
    tokenizer = getattr(processor, "tokenizer", None)
    if tokenizer is None:
        raise _fail(folder, "it has no tokenizer")
    tokenizer.padding_side = "left"
    return processor


def _load_model(
    folder: Path, precision: str, device: str, trust_remote_code: bool, family: Family
) -> Any:
    import torch
    from safetensors import SafetensorError
    from transformers import AutoModelForImageTextToText

    kwargs: dict[str, Any] = {
        "local_files_only": True,
        "use_safetensors": True,
        "trust_remote_code": trust_remote_code,
    }
    if precision in ("nf4", "int8"):
        kwargs["quantization_config"] = _quantisation(precision, device, family)
        kwargs["dtype"] = torch.bfloat16 if device == "cuda" else torch.float32
        kwargs["device_map"] = {"": device}
    else:
        kwargs["dtype"] = torch.bfloat16 if precision == "bf16" else torch.float32
    try:
        model = AutoModelForImageTextToText.from_pretrained(folder, **kwargs)
        if "device_map" not in kwargs:
            model = model.to(device)
    except torch.cuda.OutOfMemoryError as exc:
        raise _out_of_memory(folder, precision) from exc
    except SafetensorError as exc:  # damage the header check cannot see
        cause = f"a weights file cannot be read ({_one_line(exc)}); copy or download it again"
        raise _damaged(folder, cause) from exc
    except RuntimeError as exc:
        if "out of memory" in str(exc).lower():
            raise _out_of_memory(folder, precision) from exc
        raise _fail(folder, f"transformers could not build it ({exc})") from exc
    except ArithmeticError as exc:  # e.g. a config.json with "num_attention_heads": 0
        reason = f"transformers could not build it from config.json ({type(exc).__name__}: {exc})"
        raise _fail(folder, reason) from exc
    except (OSError, ValueError, KeyError, TypeError, ImportError) as exc:
        raise _fail(folder, f"transformers could not read it ({exc})") from exc
    model.generation_config.do_sample = False
    return model


def _quantisation(precision: str, device: str, family: Family) -> Any:
    import torch
    from transformers import BitsAndBytesConfig

    skipped = list(family.unquantised)
    if precision == "int8":
        return BitsAndBytesConfig(load_in_8bit=True, llm_int8_skip_modules=skipped)
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.bfloat16 if device == "cuda" else torch.float32,
        llm_int8_skip_modules=skipped,
    )


def _out_of_memory(folder: Path, precision: str) -> ModelLoadError:
    lower = {"fp32": "bf16 or nf4", "bf16": "nf4", "int8": "nf4"}.get(precision)
    advice = f"try precision {lower}, or the CPU" if lower else "try the CPU"
    return _fail(folder, f"the device ran out of memory at precision {precision!r}; {advice}")


def _load_adapter(model: Any, folder: Path, config: dict[str, Any], adapter: Path) -> Any:
    from peft import PeftModel
    from safetensors import SafetensorError

    base_name = _adapter_base(adapter)
    _check_adapter_base(folder, config, adapter, base_name)
    try:
        return PeftModel.from_pretrained(model, adapter, is_trainable=False)
    except SafetensorError as exc:
        cause = f"its weights cannot be read ({_one_line(exc)}); copy or download it again"
        raise _damaged(adapter, cause, "adapter") from exc
    except (RuntimeError, ValueError, KeyError, TypeError, OSError) as exc:
        raise _fail(
            adapter,
            f"an adapter onto '{folder}' as it was made for another base model "
            f"({base_name!r}): {exc}",
        ) from exc


def _adapter_base(adapter: Path) -> str:
    try:
        data = json.loads((adapter / "adapter_config.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _fail(adapter, f"its adapter_config.json cannot be read ({exc})") from exc
    return str(data.get("base_model_name_or_path") or "")


def _check_adapter_base(folder: Path, config: dict[str, Any], adapter: Path, base: str) -> None:
    """When the adapter names a local base folder, its architecture must match ours."""
    base_config = Path(base) / "config.json" if base else None
    if base_config is None or not base_config.is_file():
        return
    try:
        theirs = json.loads(base_config.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return
    if _shape(theirs) != _shape(config):
        raise _fail(
            adapter,
            f"an adapter onto '{folder}' as it was made for another base model ({base!r}, "
            f"{_shape(theirs)} vs {_shape(config)})",
        )


def _shape(config: dict[str, Any]) -> tuple:
    text = config.get("text_config") or config
    keys = ("hidden_size", "num_hidden_layers", "vocab_size")
    return (config.get("model_type"), *(text.get(k) for k in keys))
