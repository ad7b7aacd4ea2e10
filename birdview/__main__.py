"""Command line: ``birdview [view] [PATH]`` opens the viewer, ``birdview info PATH`` reports,
``birdview ask`` asks a model, ``birdview model-info DIR`` describes a checkpoint."""

from __future__ import annotations

import argparse
import sys

from birdview import __version__
from birdview._logging import configure_logging

USAGE = """\
birdview [view] [PATH]        open the viewer, optionally on PATH (a running BirdView
                              opens it instead; --new-window starts another)
                              (DICOM file/folder/DICOMDIR/.zip, NIfTI, PNG/JPEG/TIFF)
birdview info PATH [--json]   print the series BirdView finds in PATH, without a window
birdview ask --model DIR --image PATH [--json] QUESTION   ask a local model about a slice
birdview model-info DIR [--json]   describe a checkpoint folder without loading it
birdview pacs echo|find|get|store|login URL ...   talk to a PACS (birdview pacs -h)
"""


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "info":
        return _info(argv[1:])
    if argv and argv[0] == "ask":
        from birdview.inference.cli import main as ask_main

        return ask_main(argv[1:])
    if argv and argv[0] == "model-info":
        from birdview.inference.model_info import main as model_info_main

        return model_info_main(argv[1:])
    if argv and argv[0] == "pacs":
        from birdview.pacs.cli import main as pacs_main

        return pacs_main(argv[1:])
    if argv and argv[0] == "view":
        argv = argv[1:]
    return _view(argv)


def _view(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="birdview", usage=USAGE)
    parser.add_argument("path", nargs="?", help="a study to open")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    parser.add_argument(
        "--new-window",
        action="store_true",
        help="start a window of its own instead of handing PATH to a running BirdView",
    )
    parser.add_argument("--version", action="version", version=f"BirdView {__version__}")
    args = parser.parse_args(argv)
    configure_logging(verbose=args.verbose)
    from birdview.ui.app import run

    return run(args.path, single_instance=not args.new_window)


def _info(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="birdview info", description="Report what BirdView finds in PATH."
    )
    parser.add_argument("path")
    parser.add_argument("--json", action="store_true", help="print JSON (stable, for scripts)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log more")
    args = parser.parse_args(argv)
    configure_logging(verbose=args.verbose, to_file=False)
    from birdview.core.info import describe_path, format_report

    report = describe_path(args.path)
    if args.json:
        import json

        print(json.dumps(report, indent=2))
    else:
        print(format_report(report))
    return 0 if report["series"] else 2


if __name__ == "__main__":
    sys.exit(main())
