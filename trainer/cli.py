"""``birdview-train``: the trainer's command line, one subcommand per job.

birdview-train tiny --family qwen3_vl --out DIR [--seed N]
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

__all__ = ["main"]

logger = logging.getLogger(__name__)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="birdview-train", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    commands = parser.add_subparsers(dest="command", required=True)
    _add_tiny(commands)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    return args.run(args)


def _add_tiny(commands) -> None:
    from trainer.tiny import FAMILIES

    tiny = commands.add_parser(
        "tiny", help="build a tiny randomly initialised checkpoint (tests, demo)"
    )
    tiny.add_argument("--family", required=True, choices=FAMILIES)
    tiny.add_argument("--out", required=True, help="the folder to write")
    tiny.add_argument("--seed", type=int, default=0)
    tiny.set_defaults(run=_run_tiny)


def _run_tiny(args: argparse.Namespace) -> int:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from trainer.tiny import build_tiny

    out = build_tiny(args.family, args.out, seed=args.seed)
    logger.info("wrote %s", out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
