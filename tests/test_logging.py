"""Log files get BirdView's own records and never a header value (patient names, IDs)."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import REPO, shared

SCRIPT = """
import sys
from birdview._logging import configure_logging
path = configure_logging(verbose=True)
from birdview.core.io import open_path
for folder in sys.argv[1:]:
    open_path(folder)
print(path)
"""


def test_log_file_holds_no_patient_identity(tmp_path):
    env = dict(os.environ, XDG_STATE_HOME=str(tmp_path))
    mr = shared("dcm4che_mr")  # PatientName DOE^J1, PatientID 583295
    # IM00001 makes pydicom warn, quoting its Specific Character Set value.
    cine = shared(
        "dicom_multiframe",
        "encapsulated",
        "multi-frame",
        "IM00001.fragmented_no_bot_jpeg_baseline.50.dcm",
    )
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(mr), str(cine)],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    log = (tmp_path / "birdview" / "log" / "birdview.log").read_text()
    assert "scanned 16 files" in log  # BirdView's own records are there
    for secret in ("DOE", "583295", "MEMORIAL", "ISO-IR 100"):
        assert secret not in log
        assert secret not in done.stderr
