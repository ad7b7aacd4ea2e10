"""What each ``birdview pacs`` command does once its arguments are checked (see `cli`)."""

from __future__ import annotations

import getpass
import json
import sys
from pathlib import Path

from birdview.pacs.client import StudyQuery
from birdview.pacs.connection import connect
from birdview.pacs.credentials import save_secret
from birdview.pacs.errors import PacsError
from birdview.pacs.settings import PacsServer


def run(server: PacsServer, args) -> int:
    return {"echo": echo, "find": find, "get": get, "store": store, "login": login}[args.command](
        server, args
    )


def echo(server: PacsServer, args) -> int:
    connect(server).echo()
    print(f"{server.label}: answers")
    return 0


def find(server: PacsServer, args) -> int:
    query = StudyQuery(
        patient_name=args.patient_name,
        patient_id=args.patient_id,
        date=args.date,
        modality=args.modality,
        accession=args.accession,
    )
    for study in connect(server).find_studies(query):
        if args.json:
            print(json.dumps(study))
        else:
            print(
                "  ".join(
                    study[k] or "-"
                    for k in ("StudyInstanceUID", "StudyDate", "ModalitiesInStudy", "PatientID")
                )
                + f"  {study['StudyDescription']}"
            )
    return 0


def get(server: PacsServer, args) -> int:
    out = Path(args.out)
    client = connect(server)
    if args.move and server.kind != "dimse":
        raise PacsError(server.label, "--move needs a dicom:// server")
    fetch = client.move if args.move else client.retrieve
    result = fetch(args.study_uid, str(out), series_uids=args.series, progress=_progress())
    print(
        f"{result.total} instances in {out} ({result.received} received, "
        f"{result.skipped} already there)"
    )
    return 0


def store(server: PacsServer, args) -> int:
    missing = [f for f in args.files if not Path(f).is_file()]
    if missing:
        raise PacsError(server.label, f"cannot send {missing[0]}: no such file")
    accepted = connect(server).store(args.files)
    print(f"{len(accepted)} instances sent to {server.label}")
    return 0


def login(server: PacsServer, args) -> int:
    if server.auth == "none":
        raise PacsError(server.label, "login needs --user NAME or --bearer")
    what = "token" if server.auth == "bearer" else f"password for {server.username}"
    secret = (
        getpass.getpass(f"{what}: ") if sys.stdin.isatty() else sys.stdin.readline().rstrip("\n")
    )
    if not secret:
        raise PacsError(server.label, f"no {what} given")
    save_secret(server, secret)
    print(f"{what} for {server.label} kept in the system keyring")
    return 0


def _progress():
    """Progress on stderr, only for a person watching a terminal."""
    if not sys.stderr.isatty():
        return None

    def show(done: int, total: int) -> None:
        print(f"\r{done}/{total} instances", end="" if done < total else "\n", file=sys.stderr)

    return show
