"""The installer's viewer shell carries what the PACS code finds at run time by name rather than
by import: keyring's backends (entry points in its metadata), pynetdicom's metadata (its version
is read from it on import) and modules, dicomweb-client, certifi's CA bundle, and highdicom's
data files (used to write the SR, KOS, SC and SEG). The spec is evaluated the way PyInstaller
does, with its build steps recorded instead of run (no build here)."""

from __future__ import annotations

import os
from importlib.metadata import distribution
from pathlib import Path

import pytest

from tests.conftest import REPO

SPEC = REPO / "packaging" / "birdview.spec"


@pytest.fixture(scope="module")
def shell_analysis() -> dict:
    pytest.importorskip("PyInstaller")
    recorded: dict = {}

    class Analysis:  # records the arguments; the build itself is PyInstaller's business
        def __init__(self, scripts, **options):
            recorded.update(options, scripts=scripts)
            self.binaries, self.datas, self.pure, self.scripts = [], [], [], []

    def step(*args, **kwargs):
        return None

    namespace = {"SPECPATH": str(SPEC.parent), "Analysis": Analysis}
    namespace.update(PYZ=step, EXE=step, COLLECT=step)
    before = os.environ.get("BIRDVIEW_PACKAGE")
    os.environ["BIRDVIEW_PACKAGE"] = "shell"
    try:
        exec(compile(SPEC.read_text(), str(SPEC), "exec"), namespace)
    finally:
        if before is None:
            os.environ.pop("BIRDVIEW_PACKAGE")
        else:
            os.environ["BIRDVIEW_PACKAGE"] = before
    return recorded


def _bundled_metadata(analysis: dict) -> set[str]:
    return {Path(dest).name for _, dest in analysis["datas"] if dest.endswith(".dist-info")}


def _dist_info(name: str) -> str:
    """The installed distribution's metadata folder name ("keyring-25.7.0.dist-info")."""
    return Path(str(distribution(name)._path)).name  # noqa: SLF001 - no public accessor


def test_every_keyring_backend_and_its_metadata_travel(shell_analysis):
    keyring = distribution("keyring")
    backends = {ep.module for ep in keyring.entry_points if ep.group == "keyring.backends"}
    assert backends, "keyring declares its backends as entry points"
    assert backends <= set(shell_analysis["hiddenimports"])
    assert _dist_info("keyring") in _bundled_metadata(shell_analysis)
    for platform_library in ("secretstorage", "jeepney"):  # the Linux Secret Service backend
        assert platform_library in shell_analysis["hiddenimports"]


def test_pynetdicom_and_dicomweb_client_travel(shell_analysis):
    hidden = set(shell_analysis["hiddenimports"])
    for module in ("pynetdicom.sop_class", "pynetdicom.status", "pynetdicom._handlers",
                   "pynetdicom.service_class", "dicomweb_client.api", "birdview.pacs.dimse",
                   "birdview.pacs.dicomweb", "birdview.core.exports_dicom"):  # fmt: skip
        assert module in hidden
    assert not [m for m in hidden if m.startswith(("pynetdicom.tests", "pynetdicom.apps"))]
    bundled = _bundled_metadata(shell_analysis)
    for name in ("pynetdicom", "dicomweb-client", "requests", "certifi"):
        assert _dist_info(name) in bundled, name
    excluded = set(shell_analysis["excludes"])
    assert not excluded & {"pynetdicom", "dicomweb_client", "keyring", "requests", "certifi"}


def test_highdicom_and_certifi_data_files_travel(shell_analysis):
    import certifi
    import highdicom

    sources = {Path(src).resolve() for src, _ in shell_analysis["datas"]}
    package = Path(highdicom.__file__).parent
    needed = [
        p.resolve()
        for p in package.rglob("*")
        if p.is_file() and p.suffix not in (".py", ".pyc") and "__pycache__" not in p.parts
    ]
    assert needed and set(needed) <= sources
    assert Path(certifi.where()).resolve() in sources
