"""``birdview pacs echo|find|get|store|login URL ...``: the PACS from scripts and tests.

URL is ``dicom://CALLED_AE@host:port`` or ``http(s)://host:port/<dicomweb root>``. Exit status
0 on success, 1 when the server or the files let us down (one line saying why), 2 for bad usage.
"""

from __future__ import annotations

import argparse
import sys

from birdview.pacs.settings import DEFAULT_AE, parse_url

DESCRIPTION = """\
birdview pacs echo URL                      check the server answers
birdview pacs find URL [--patient-id ID] [--modality M] [--json]   list matching studies
birdview pacs get URL STUDY_UID --out DIR [--move]   retrieve a study (C-GET, C-MOVE or WADO-RS)
birdview pacs store URL FILE...             send DICOM files (C-STORE or STOW-RS)
birdview pacs login URL (--user NAME | --bearer)   keep a password or token in the keyring
URL: dicom://CALLED_AE@host:port  or  http(s)://host:port/<dicomweb root>
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="birdview pacs", description=DESCRIPTION, formatter_class=argparse.RawTextHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("echo", "find", "get", "store", "login"):
        sub = commands.add_parser(name)
        sub.add_argument("url")
        _connection_options(sub)
        if name == "find":
            for flag in ("patient-id", "patient-name", "modality", "date", "accession"):
                sub.add_argument(f"--{flag}", default="")
            sub.add_argument("--json", action="store_true", help="one JSON object per study")
        elif name == "get":
            sub.add_argument("study_uid")
            sub.add_argument("--out", required=True, help="folder the study goes to")
            sub.add_argument("--series", nargs="*", default=[], help="only these series")
            sub.add_argument("--move", action="store_true", help="C-MOVE to our storage SCP")
        elif name == "store":
            sub.add_argument("files", nargs="+")
    return parser


def _connection_options(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--ae", default=DEFAULT_AE, help="calling AE title (default BIRDVIEW)")
    sub.add_argument("--timeout", type=float, default=30.0, help="seconds (default 30)")
    sub.add_argument("--user", default="", help="HTTP basic login; password from the keyring")
    sub.add_argument("--bearer", action="store_true", help="bearer token from the keyring")
    sub.add_argument("--ca-file", default="", help="CA certificates for TLS")
    sub.add_argument("--tls", action="store_true", help="DICOM TLS (dicom:// URLs)")
    sub.add_argument("--storage-port", type=int, default=11113, help="our C-MOVE storage SCP")
    sub.add_argument("--move-ae", default="", help="C-MOVE destination (default: --ae)")
    sub.add_argument("-v", "--verbose", action="store_true")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        server = parse_url(
            args.url,
            calling_ae=args.ae,
            timeout=args.timeout,
            auth="bearer" if args.bearer else ("basic" if args.user else "none"),
            username=args.user,
            ca_file=args.ca_file,
            storage_port=args.storage_port,
            move_ae=args.move_ae,
            tls=args.tls,
        )
    except ValueError as exc:
        print(f"birdview pacs: {exc}", file=sys.stderr)
        return 2
    from birdview._logging import configure_logging

    configure_logging(verbose=args.verbose, to_file=False)
    from birdview.pacs import commands
    from birdview.pacs.errors import PacsError

    try:
        return commands.run(server, args)
    except PacsError as exc:
        print(f"birdview pacs {args.command}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"birdview pacs {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
