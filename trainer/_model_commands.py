"""The model commands of ``birdview-train`` (`trainer.cli`): tiny, predict, evaluate, fit and
merge. Each ``add_*`` adds its subcommand's parser, whose ``run`` does the job."""

from __future__ import annotations

import argparse
import logging
import os

from birdview.inference.offline import go_offline

__all__ = ["add_evaluate", "add_fit", "add_merge", "add_predict", "add_tiny"]

# The commands report under the command line's name, as they did when they lived there.
logger = logging.getLogger("trainer.cli")


def add_tiny(commands) -> None:
    from birdview.core.families import tiny_families

    tiny = commands.add_parser(
        "tiny", help="build a tiny randomly initialised checkpoint (tests, demo)"
    )
    tiny.add_argument("--family", required=True, choices=tiny_families())
    tiny.add_argument("--out", required=True, help="the folder to write")
    tiny.add_argument("--seed", type=int, default=0)
    tiny.set_defaults(run=_run_tiny)


def _run_tiny(args: argparse.Namespace) -> int:
    go_offline()
    from trainer.tiny import build_tiny

    out = build_tiny(args.family, args.out, seed=args.seed)
    logger.info("wrote %s", out)
    return 0


def add_predict(commands) -> None:
    from birdview.inference.loader import DEVICES, PRECISIONS  # light: no torch at import

    predict = commands.add_parser(
        "predict", help="answer a Med-GRIT test file with a checkpoint (JSONL, resumable)"
    )
    predict.add_argument("--model", required=True, help="the checkpoint folder")
    predict.add_argument("--adapter", help="a peft adapter folder to load onto it")
    predict.add_argument("--data", required=True, help="the Med-GRIT test JSON")
    predict.add_argument("--images", required=True, help="the folder holding its images")
    predict.add_argument("--out", required=True, help="the JSONL to write (or resume)")
    predict.add_argument("--batch-size", type=int, default=8)
    predict.add_argument("--precision", default="auto", choices=PRECISIONS)
    predict.add_argument("--device", default="auto", choices=DEVICES)
    predict.add_argument("--no-progress", action="store_true", help="no progress bar")
    predict.set_defaults(run=_run_predict)


def _run_predict(args: argparse.Namespace) -> int:
    from birdview.inference.errors import InferenceError  # light: no torch at import
    from trainer.predict import predict

    try:
        stats = predict(
            args.model,
            args.data,
            args.images,
            args.out,
            adapter_dir=args.adapter,
            batch_size=args.batch_size,
            precision=args.precision,
            device=args.device,
            progress=not args.no_progress,
        )
    except InferenceError as exc:
        logger.error("%s", exc, exc_info=args.verbose)
        return 2
    logger.info(
        "%d items: %d answered now, %d already done (%.1f s)",
        stats.items,
        stats.generated,
        stats.skipped,
        stats.seconds,
    )
    return 0


def add_evaluate(commands) -> None:
    evaluate = commands.add_parser(
        "evaluate", help="score a prediction JSONL exactly as BiRD's evaluation does"
    )
    evaluate.add_argument("--task", required=True, choices=("vg", "roc", "rc", "mia"))
    evaluate.add_argument("predictions", help="the JSONL written by 'predict'")
    evaluate.add_argument("--json", action="store_true", help="print the scores as JSON")
    evaluate.add_argument("--plot", help="write a per-modality bar chart to this PNG")
    evaluate.set_defaults(run=_run_evaluate)


def _run_evaluate(args: argparse.Namespace) -> int:
    import json

    from trainer.evaluation import evaluate_file, format_scores, plot_scores

    scores = evaluate_file(args.predictions, args.task)
    if args.json:
        print(json.dumps(scores.to_dict(), indent=2))
    else:
        print(format_scores(scores))
    if args.plot:
        plot_scores(scores, args.plot)
        logger.info("wrote %s", args.plot)
    return 0


def add_fit(commands) -> None:
    fit = commands.add_parser(
        "fit",
        help="fine-tune a base of a known family on Med-GRIT data into a checkpoint BirdView loads",
        description="RECIPE is a YAML file or a shipped recipe: bird-full, bird-lora, "
        "bird-qlora, tiny-cpu (trainer/recipes/). Runs the same under torchrun and accelerate "
        "launch.",
    )
    fit.add_argument("--config", required=True, metavar="RECIPE", help="recipe file or name")
    fit.add_argument(
        "--override",
        "--set",
        dest="overrides",
        nargs="+",
        action="extend",
        default=[],
        metavar="KEY=VALUE",
        help="e.g. model.base=DIR data.train=TRAIN.json out=RUN train.lr=1e-4",
    )
    fit.add_argument("--resume", action="store_true", help="continue the run in its out folder")
    fit.add_argument("--no-progress", action="store_true", help="no progress bar")
    fit.add_argument(
        "--dry-run",
        action="store_true",
        help="check the run and print what one optimiser step holds (batch, packing, tokens) "
        "from the base's processor, without loading the model or writing anything",
    )
    fit.set_defaults(run=_run_fit)


def _run_fit(args: argparse.Namespace) -> int:
    go_offline()
    if int(os.environ.get("RANK", "0")) != 0:
        logging.getLogger().setLevel(logging.WARNING)  # under torchrun, rank 0 reports
        args.no_progress = True
    if args.no_progress:  # transformers' own bars too (loading, saving), read at its import
        os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    from trainer.fit.recipe import load_recipe
    from trainer.fit.start import check_start

    recipe = load_recipe(args.config, args.overrides)
    start = check_start(recipe, resume=args.resume)  # before torch: a refusal takes a moment
    if args.dry_run:
        from trainer.fit.packing import dry_run_plan

        print(dry_run_plan(recipe, start.samples).describe())
        return 0
    from trainer.fit.run import fit

    result = fit(recipe, resume=args.resume, progress=not args.no_progress, start=start)
    logger.info("%d steps, last loss %s: %s", result.steps, result.loss, result.out)
    _leave_process_group()
    return 0


def _leave_process_group() -> None:
    """Close torchrun's process group before the interpreter exits: under DeepSpeed ZeRO-3 a
    rank left with the group open was seen to abort at exit ("terminate called without an
    active exception") after a good checkpoint, failing the launch."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def add_merge(commands) -> None:
    merge = commands.add_parser(
        "merge", help="fold a LoRA/QLoRA adapter into its base as a full checkpoint"
    )
    merge.add_argument("--base", required=True, help="the base checkpoint folder")
    merge.add_argument("--adapter", required=True, help="the adapter folder (a fit's out)")
    merge.add_argument("--out", required=True, help="the folder to write (must be empty)")
    merge.set_defaults(run=_run_merge)


def _run_merge(args: argparse.Namespace) -> int:
    go_offline()
    from trainer.fit.merge import merge_adapter

    out = merge_adapter(args.base, args.adapter, args.out)
    logger.info("wrote %s", out)
    return 0
