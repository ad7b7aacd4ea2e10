"""``birdview-train fit``: a base of a known family + Med-GRIT data → a checkpoint BirdView loads.

`fit` reads top to bottom: check everything that can be checked without torch
(`trainer.fit.start`), open the output folder, load the base with the recipe's freeze
policy or adapters, turn the Med-GRIT items into conversations in the base family's box format,
choose padding or packing, hand everything to transformers' `Trainer`, and save the checkpoint
with its processor and ``birdview.json``. Because the loop is the Trainer's, the same recipe
runs under ``python -m trainer.cli``, ``torchrun --nproc_per_node=N -m trainer.cli`` and
``accelerate launch --config_file trainer/launch/fsdp.yaml -m trainer.cli`` (or with
``train.deepspeed=trainer/launch/zero2.json``). Every process runs `fit`; only the main one
writes logs and metadata.
"""

from __future__ import annotations

import importlib.util
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from birdview.core.model_card import read_card
from trainer._json_stream import read_json
from trainer.checkpoint_card import write_checkpoint_card
from trainer.fit.callbacks import HeldOutEval, MetricsLog, ThroughputTrainer
from trainer.fit.checkpoint import data_summary, git_sha, latest_checkpoint, write_metadata
from trainer.fit.collate import PackCollator, PadCollator
from trainer.fit.dataset import ConversationDataset
from trainer.fit.model import can_pack, family_of, load_for_training, rope_index_of
from trainer.fit.packing import PackedSequences, SequenceCollator, sample_mean_length, step_plan
from trainer.fit.recipe import Recipe, recipe_to_dict
from trainer.fit.start import Start, accumulation, check_start, is_main, open_out, world_size

__all__ = ["FitResult", "fit"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FitResult:
    """What a run produced: the checkpoint folder, optimiser steps, the last logged training
    loss, real tokens trained on by this process, training seconds, held-out scores."""

    out: Path
    steps: int
    loss: float | None
    tokens: int
    seconds: float
    eval: dict[str, Any]


def fit(
    recipe: Recipe, *, resume: bool = False, progress: bool = True, start: Start | None = None
) -> FitResult:
    """Train as ``recipe`` says and save the checkpoint to ``recipe.out``.

    ``resume``: continue the run in ``recipe.out`` from its latest checkpoint (the recipe must
    be the one it was started with); without it the folder must be new, empty, or left by a
    start that saved no checkpoint (`trainer.fit.start`). ``start``: what `check_start`
    returned for this recipe, when the caller has checked it already.

    Raises:
        FileNotFoundError: the base, the training file or its images are missing.
        ValueError: the recipe cannot run here, or the output folder holds a run with a
            checkpoint (no ``resume``) or another recipe's run.
    """
    import transformers

    start = start or check_start(recipe, resume=resume)
    out, train_json, images, samples = start.out, start.train_json, start.images, start.samples
    open_out(recipe, out)
    checkpoint = latest_checkpoint(out) if resume else None
    transformers.set_seed(recipe.train.seed)
    model, processor = load_for_training(
        recipe.model, recipe.data, weights=_weights(checkpoint, recipe)
    )
    family = family_of(model).key
    card = read_card(recipe.model.base)  # its conventions carry over to the fine-tune's card
    dataset = ConversationDataset(samples, processor, family, recipe.data.max_length, card)
    pad_id = processor.tokenizer.pad_token_id
    collator = _collator(recipe, model, pad_id)
    if _into_sequences(recipe):
        logger.info("measuring %d conversations to pack them into sequences", len(samples))
        dataset = PackedSequences(dataset, recipe.data.max_length, workers=recipe.train.workers)
        logger.info("%d conversations in %d sequences", len(samples), len(dataset))
    logger.info("%d conversations, %s family", len(samples), family)
    for line in _plan(recipe, dataset).splitlines():
        logger.info("%s", line)

    eval_callback = HeldOutEval(
        processor,
        family,
        _eval_files(recipe, train_json),
        Path(recipe.eval.images) if recipe.eval.images else images,
        out,
        max_items=recipe.eval.max_items,
        batch_size=recipe.eval.batch_size,
        sharded=_sharded(recipe),
        card=card,
    )
    trainer = ThroughputTrainer(
        model=model,
        args=training_arguments(recipe, out, progress=progress),
        train_dataset=dataset,
        data_collator=collator,
        processing_class=processor,
        callbacks=[MetricsLog(out / "logs"), eval_callback],
        pad_id=pad_id,
    )
    _check_deepspeed(trainer)
    if resume:
        logger.info("resuming from %s", checkpoint or "the start (no checkpoint yet)")
    result = trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)

    trainer.save_model(str(out))  # weights (gathered under FSDP/ZeRO) and processor
    loss = _last_loss(trainer.state.log_history)
    if trainer.is_world_process_zero():
        (out / "training_args.bin").unlink(missing_ok=True)  # pickled; the recipe says it all
        metrics = {
            "train": {**result.metrics, "last_loss": loss, "steps": trainer.state.global_step},
            "eval": eval_callback.results,
        }
        _describe(out, recipe, model, family, data_summary(train_json, len(samples)), metrics)
        write_checkpoint_card(out)
        logger.info("wrote the checkpoint to %s", out)
    return FitResult(
        out,
        trainer.state.global_step,
        loss,
        trainer.real_tokens,
        float(result.metrics.get("train_runtime", 0.0)),
        eval_callback.results,
    )


def _describe(
    out: Path, recipe: Recipe, model: Any, family: str, data: dict, metrics: dict
) -> None:
    """``birdview.json``: what the checkpoint is and how it was made."""
    import transformers

    write_metadata(
        out,
        kind="full" if recipe.model.method == "full" else "adapter",
        family=family,
        model_type=model.config.model_type,
        base=os.path.abspath(recipe.model.base),
        recipe=recipe_to_dict(recipe),
        data=data,
        metrics=metrics,
        git_sha=git_sha(),
        transformers=transformers.__version__,
    )


# -- setup ----------------------------------------------------------------------------------


def training_arguments(recipe: Recipe, out: Path, *, progress: bool = True) -> Any:
    """The Trainer's arguments for ``recipe`` on this machine and process count."""
    import torch
    from transformers import TrainingArguments

    train, model = recipe.train, recipe.model
    cuda = torch.cuda.is_available()
    return TrainingArguments(
        output_dir=str(out / "checkpoints"),
        per_device_train_batch_size=train.per_device_batch,
        gradient_accumulation_steps=accumulation(recipe),
        num_train_epochs=train.epochs,
        max_steps=train.max_steps,
        learning_rate=train.lr,
        lr_scheduler_type=train.schedule,
        warmup_steps=train.warmup,
        weight_decay=train.weight_decay,
        adam_beta1=train.beta1,
        adam_beta2=train.beta2,
        max_grad_norm=train.max_grad_norm,
        optim="adamw_torch",
        bf16=model.precision == "bf16",
        activation_checkpointing=model.gradient_checkpointing,
        activation_checkpointing_kwargs={"use_reentrant": False},
        logging_steps=train.log_every,
        save_strategy="steps",
        save_steps=train.save_every,
        save_total_limit=train.keep_checkpoints,
        seed=train.seed,
        data_seed=train.seed,
        report_to=_reporters(out),
        use_cpu=not cuda,
        ddp_backend="gloo" if not cuda and world_size() > 1 else None,
        ddp_find_unused_parameters=False,
        dataloader_num_workers=train.workers,
        remove_unused_columns=False,
        disable_tqdm=not progress,
        deepspeed=train.deepspeed or None,
    )


def _check_deepspeed(trainer: Any) -> None:
    """Say so when accelerate was configured for DeepSpeed but the Trainer is not using it:
    with ACCELERATE_USE_CPU=true accelerate silently falls back to plain DDP."""
    wanted = os.environ.get("ACCELERATE_USE_DEEPSPEED", "").lower() in ("1", "true")
    if wanted and not trainer.is_deepspeed_enabled:
        logger.warning(
            "accelerate was configured for DeepSpeed but it is not in use (ACCELERATE_USE_CPU "
            "turns it off); this run is plain data parallel"
        )


def _weights(checkpoint: Path | None, recipe: Recipe) -> Path | None:
    """The checkpoint to load a resumed full fine-tuning's weights from. The Trainer restores
    them with a plain ``load_state_dict`` that misses the keys transformers renames on loading
    (checkpoints saved as ``visual.*``/``model.layers.*`` for a model that has
    ``model.visual.*``/``model.language_model.*``; transformers issue #43701), so they are
    loaded here through ``from_pretrained``, which renames them; the Trainer's "missing keys"
    warning that follows is expected. Adapters (LoRA/QLoRA) resume through peft, which is not
    affected."""
    if checkpoint is None or recipe.model.method != "full":
        return None
    if os.environ.get("ACCELERATE_USE_FSDP", "").lower() in ("1", "true") or recipe.train.deepspeed:
        return None  # restored from their own sharded states
    logger.info("loading the weights of %s (transformers issue #43701)", checkpoint.name)
    return checkpoint


def _eval_files(recipe: Recipe, train_json: Path) -> list[Path]:
    """Held-out files found from the working folder or next to the training file."""
    found = []
    for name in recipe.eval.files:
        candidates = [Path(name), train_json.parent / name]
        path = next((p for p in candidates if p.is_file()), None)
        if path is None:
            logger.warning("held-out file %r not found; it is not evaluated", name)
        else:
            found.append(path)
    return found


def _collator(recipe: Recipe, model: Any, pad_id: int) -> Any:
    if not recipe.data.pack:
        return PadCollator(pad_id)
    reason = can_pack(model)
    if reason:
        raise ValueError(f"Unable to pack conversations as {reason}")
    pack = PackCollator(pad_id, _pack_capacity(recipe), rope_index_of(model))
    if _into_sequences(recipe):
        return SequenceCollator(pack, one_row=_varlen(recipe))
    return pack


def _into_sequences(recipe: Recipe) -> bool:
    return recipe.data.pack and recipe.data.pack_into == "sequences"


def _varlen(recipe: Recipe) -> bool:
    """Whether the attention splits a row by conversation (no block mask to pay for)."""
    attention = recipe.model.attention
    return attention.startswith("flash_attention") or attention == "sdpa_varlen"


def _pack_capacity(recipe: Recipe) -> int:
    """Tokens per packed row. Attention that splits a row by conversation (flash-attention,
    ``sdpa_varlen``) takes the whole batch in one row, with no padding at all; attention
    through a block-diagonal mask (``sdpa``, ``eager``) costs the square of the row, so rows
    stay at ``data.max_length``."""
    return recipe.data.max_length * (recipe.train.per_device_batch if _varlen(recipe) else 1)


def _plan(recipe: Recipe, dataset: Any) -> str:
    """What one optimiser step holds (`trainer.fit.packing.StepPlan`); the mean length is
    measured on up to 64 conversations unless the packing measured them all."""
    if isinstance(dataset, PackedSequences):
        per_sequence = len(dataset.lengths) / max(len(dataset), 1)
        mean, per = dataset.mean_length, per_sequence
    else:
        mean, per = (sample_mean_length(dataset) if is_main() else 0.0), None
    return step_plan(recipe, world_size(), accumulation(recipe), mean, per).describe()


def _reporters(out: Path) -> list[str]:
    if importlib.util.find_spec("tensorboard") or importlib.util.find_spec("tensorboardX"):
        # Set, not defaulted: a second run in the same process must not log into the first's.
        os.environ["TENSORBOARD_LOGGING_DIR"] = str(out / "logs" / "tensorboard")
        return ["tensorboard"]
    logger.info("tensorboard is not installed: logging to logs/train.csv and logs/loss.png only")
    return []


def _sharded(recipe: Recipe) -> bool:
    """True when parameters are split across processes (FSDP, ZeRO-3)."""
    if os.environ.get("ACCELERATE_USE_FSDP", "").lower() in ("1", "true"):
        return True
    if recipe.train.deepspeed:
        config = read_json(recipe.train.deepspeed)  # a JSON object: checked at the start
        return int(config.get("zero_optimization", {}).get("stage", 0)) == 3
    return False


def _last_loss(history: list[dict[str, Any]]) -> float | None:
    losses = [entry["loss"] for entry in history if "loss" in entry]
    return float(losses[-1]) if losses else None
