"""The data commands of ``birdview-train`` (`trainer.cli`): build-data, merge-data and validate.
Each ``add_*`` adds its subcommand's parser, whose ``run`` does the job."""

from __future__ import annotations

import argparse
import logging

__all__ = ["add_build_data", "add_validate"]

# The commands report under the command line's name, as they did when they lived there.
logger = logging.getLogger("trainer.cli")


def add_build_data(commands) -> None:
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


def add_validate(commands) -> None:
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
