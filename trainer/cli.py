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
import sys

from trainer._data_commands import add_build_data, add_validate
from trainer._model_commands import add_evaluate, add_fit, add_merge, add_predict, add_tiny

__all__ = ["main"]

logger = logging.getLogger(__name__)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="birdview-train", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    commands = parser.add_subparsers(dest="command", required=True)
    add_tiny(commands)
    add_build_data(commands)
    add_validate(commands)
    add_predict(commands)
    add_evaluate(commands)
    add_fit(commands)
    add_merge(commands)
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


if __name__ == "__main__":
    sys.exit(main())
