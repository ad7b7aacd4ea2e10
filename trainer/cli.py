"""``birdview-train``: the trainer's command line, one subcommand per job.

birdview-train tiny --family FAMILY --out DIR [--seed N]
birdview-train build-data SOURCE... --out DIR [--seed N] [--workers N] [--shard I/N] ...
birdview-train merge-data SHARD... --out DIR
birdview-train validate FILE --images DIR [--allow-modality NAME ...] [--data-card CARD]
birdview-train predict --model DIR [--adapter DIR] --data TEST.json --images DIR --out PRED.jsonl
birdview-train evaluate --task vg|roc|rc|mia PRED.jsonl [--json] [--plot OUT.png]
birdview-train fit --config RECIPE [--override KEY=VALUE ...] [--resume] [--dry-run]
birdview-train merge --base DIR --adapter DIR --out DIR

A command refuses what it cannot use (a missing, broken or hostile input, an output folder it
must not touch) with one line naming the file and the cause, exit status 2 and no traceback
(``-v`` adds it). Inputs are checked before torch and transformers are imported, so a refusal
takes a moment, not the 15 s those imports cost.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from birdview.inference.offline import go_offline

__all__ = ["main"]

logger = logging.getLogger(__name__)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="birdview-train", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    commands = parser.add_subparsers(dest="command", required=True)
    _add_tiny(commands)
    _add_build_data(commands)
    _add_validate(commands)
    _add_predict(commands)
    _add_evaluate(commands)
    _add_fit(commands)
    _add_merge(commands)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return args.run(args)
    except (OSError, ValueError) as exc:  # how the trainer refuses inputs (STYLE.md, Errors)
        logger.error("%s", exc, exc_info=args.verbose)
        return 2


def _add_tiny(commands) -> None:
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


def _add_build_data(commands) -> None:
    build = commands.add_parser(
        "build-data",
        help="build Med-GRIT-style train/test JSON, images and a data card from segmentations",
        description="SOURCE is [KIND:]PATH[?dataset=..&modality=..&labels=1:name,..&licence=..] "
        "with KIND one of sammed2d, masks2d, nifti, dicomseg (detected when left out). Box-only "
        "datasets: coco:FILE.json or boxcsv:FILE.csv (a file, not a folder), with "
        "images=FOLDER and, for CSV, columns=image:COL,label:COL,x_min:COL,... (or x,y,w,h) "
        "and none=LABEL (default 'No finding').",
    )
    build.add_argument(
        "sources", nargs="+", metavar="SOURCE", help="a source folder or box annotation file"
    )
    build.add_argument("--out", required=True, help="the folder to write (must be empty)")
    build.add_argument("--seed", type=int, default=0)
    build.add_argument(
        "--negative-rate",
        type=float,
        default=0.2,
        metavar="R",
        help="share of images with a not-present question (default 0.2)",
    )
    build.add_argument(
        "--test-fraction",
        type=float,
        default=0.2,
        metavar="F",
        help="share of cases in the test split (default 0.2)",
    )
    build.add_argument(
        "--min-component-px",
        type=int,
        default=16,
        metavar="N",
        help="smallest connected component that gets a box (default 16)",
    )
    build.add_argument(
        "--planes",
        default="axial,coronal,sagittal",
        help="planes to slice volumes in (default all three)",
    )
    build.add_argument(
        "--slice-step",
        type=int,
        default=1,
        metavar="N",
        help="use every N-th slice of a volume (default 1)",
    )
    build.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help="worker processes (default: every core); the output is the same for any N",
    )
    build.add_argument(
        "--shard",
        default=None,
        metavar="I/N",
        help="build only shard I of N (0 <= I < N) into --out; join them with merge-data",
    )
    build.set_defaults(run=_run_build_data)
    merge = commands.add_parser(
        "merge-data",
        help="join the shards of a build-data --shard run into one dataset",
        description="The result is byte for byte what one build-data run would write.",
    )
    merge.add_argument("shards", nargs="+", metavar="SHARD", help="a shard folder (all of them)")
    merge.add_argument("--out", required=True, help="the folder to write (must be empty)")
    merge.add_argument(
        "--workers", type=int, default=None, metavar="N", help="worker processes (default: all)"
    )
    merge.set_defaults(run=_run_merge_data)


def _shard(text: str | None) -> tuple[int, int] | None:
    """``I/N`` → (I, N); refused as one line (a ValueError), like every input of a command."""
    if text is None:
        return None
    index, sep, count = text.partition("/")
    if not (sep and index.isdigit() and count.isdigit() and int(index) < int(count)):
        raise ValueError(f"Unable to build shard {text!r}; give I/N with 0 <= I < N (e.g. 0/4)")
    return int(index), int(count)


def _run_build_data(args: argparse.Namespace) -> int:
    import shlex

    from trainer.data.build import BuildSettings, build_dataset

    shard = _shard(args.shard)
    settings = BuildSettings(
        seed=args.seed,
        negative_rate=args.negative_rate,
        test_fraction=args.test_fraction,
        min_component_px=args.min_component_px,
        planes=tuple(p.strip() for p in args.planes.split(",") if p.strip()),
        slice_step=args.slice_step,
    )
    # The command with every setting spelled out, so the card says how to rebuild exactly.
    command = shlex.join(
        [
            "birdview-train",
            "build-data",
            *args.sources,
            "--out",
            args.out,
            "--seed",
            str(settings.seed),
            "--negative-rate",
            str(settings.negative_rate),
            "--test-fraction",
            str(settings.test_fraction),
            "--min-component-px",
            str(settings.min_component_px),
            "--planes",
            ",".join(settings.planes),
            "--slice-step",
            str(settings.slice_step),
        ]
    )
    result = build_dataset(
        args.sources, args.out, settings, command=command, workers=args.workers, shard=shard
    )
    what = f"shard {args.shard}" if shard else "its JSON"
    logger.info(
        "wrote %s to %s in %.1f s (largest worker's peak memory %.0f MB)",
        what,
        result.out,
        result.seconds,
        result.peak_worker_rss_kb / 1024,
    )
    if not shard:
        logger.info("%d images", result.images)
    return 0


def _run_merge_data(args: argparse.Namespace) -> int:
    from trainer.data.shards import merge_shards

    result = merge_shards(args.shards, args.out, workers=args.workers)
    logger.info("wrote %d images and their JSON to %s", result.images, result.out)
    return 0


def _add_validate(commands) -> None:
    validate = commands.add_parser(
        "validate", help="check a Med-GRIT JSON file against its image folder"
    )
    validate.add_argument("file", help="the Med-GRIT JSON list")
    validate.add_argument("--images", required=True, help="the folder holding its images")
    validate.add_argument(
        "--allow-modality",
        action="append",
        default=[],
        metavar="NAME",
        help="accept this modality key besides Med-GRIT's 8 (repeatable, or comma-separated)",
    )
    validate.add_argument(
        "--data-card",
        metavar="CARD",
        help="accept the extra modalities this build's data_card.json (or its folder) lists",
    )
    validate.set_defaults(run=_run_validate)


def _run_validate(args: argparse.Namespace) -> int:
    from trainer.medgrit import card_extra_modalities, validate

    allowed = [name.strip() for value in args.allow_modality for name in value.split(",")]
    if args.data_card:
        allowed += card_extra_modalities(args.data_card)
    report = validate(args.file, args.images, extra_modalities=allowed)
    print(report.summary())
    for problem in report.problems:
        print(problem)
    return 0 if report.ok else 1


def _add_predict(commands) -> None:
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


def _add_evaluate(commands) -> None:
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


def _add_fit(commands) -> None:
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


def _add_merge(commands) -> None:
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


if __name__ == "__main__":
    sys.exit(main())
