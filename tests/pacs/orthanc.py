"""A real Orthanc (Debian's package, with its DICOMweb plugin) for the PACS tests."""

from __future__ import annotations

import base64
import json
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ORTHANC_AE = "ORTHANC"
USER, PASSWORD = "birdview", "pacs-test-secret"
BIRDVIEW_AE = "BIRDVIEW"
PLUGIN_CANDIDATES = (
    "/usr/share/orthanc/plugins/libOrthancDicomWeb.so",
    "/usr/lib/orthanc/libOrthancDicomWeb.so",
)


@dataclass
class Orthanc:
    http_port: int
    dicom_port: int
    storage_port: int  # where BirdView's storage SCP listens for C-MOVE
    folder: Path
    process: subprocess.Popen
    version: str = ""

    @property
    def dicom_url(self) -> str:
        return f"dicom://{ORTHANC_AE}@127.0.0.1:{self.dicom_port}"

    @property
    def web_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}/dicom-web"

    def rest(self, path: str, data: bytes | None = None, method: str | None = None):
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.http_port}{path}", data=data, method=method
        )
        token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
        if data is not None:
            request.add_header("Content-Type", "application/dicom")
        with urllib.request.urlopen(request, timeout=30) as answer:
            return json.loads(answer.read() or b"null")

    def forget(self, sop_uid: str) -> None:
        """Delete one instance, so a stored test instance does not change later counts."""
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.http_port}/tools/lookup", data=sop_uid.encode()
        )
        token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
        with urllib.request.urlopen(request, timeout=30) as answer:
            found = json.loads(answer.read())
        for item in found:
            if item["Type"] == "Instance":
                self.rest(f"/instances/{item['ID']}", method="DELETE")

    def instance_file(self, sop_uid: str) -> bytes:
        """The stored file of one instance, fetched through the REST API."""
        for orthanc_id in self.rest("/instances"):
            if self.rest(f"/instances/{orthanc_id}/simplified-tags")["SOPInstanceUID"] == sop_uid:
                request = urllib.request.Request(
                    f"http://127.0.0.1:{self.http_port}/instances/{orthanc_id}/file"
                )
                token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
                request.add_header("Authorization", f"Basic {token}")
                with urllib.request.urlopen(request, timeout=30) as answer:
                    return answer.read()
        raise KeyError(sop_uid)

    def instance_uids(self) -> set[str]:
        """Every SOP Instance UID the server holds, asked through its REST API."""
        uids = set()
        for orthanc_id in self.rest("/instances"):
            tags = self.rest(f"/instances/{orthanc_id}/simplified-tags")
            uids.add(tags["SOPInstanceUID"])
        return uids


def find_binary() -> tuple[str, str]:
    """The Orthanc binary and the DICOMweb plugin; a clear failure when not installed."""
    binary = shutil.which("Orthanc") or (
        "/usr/sbin/Orthanc" if Path("/usr/sbin/Orthanc").exists() else None
    )
    plugin = next((p for p in PLUGIN_CANDIDATES if Path(p).exists()), None)
    if binary is None or plugin is None:
        raise RuntimeError(
            "Orthanc with its DICOMweb plugin is needed for the PACS tests: "
            "apt-get install -y orthanc orthanc-dicomweb (.ci/run installs them)"
        )
    return binary, plugin


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(folder: Path) -> Orthanc:
    binary, plugin = find_binary()
    http_port, dicom_port, storage_port = free_port(), free_port(), free_port()
    config = {
        "Name": "BirdView test PACS",
        "StorageDirectory": str(folder / "storage"),
        "IndexDirectory": str(folder / "storage"),
        "HttpPort": http_port,
        "DicomPort": dicom_port,
        "DicomAet": ORTHANC_AE,
        "DicomCheckCalledAet": True,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": True,
        "RegisteredUsers": {USER: PASSWORD},
        "DicomAlwaysAllowEcho": True,
        "DicomAlwaysAllowStore": True,
        "DicomModalities": {"birdview": [BIRDVIEW_AE, "127.0.0.1", storage_port]},
        "DicomScuTimeout": 10,
        "Plugins": [plugin],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "EnableWado": False},
    }
    config_path = folder / "orthanc.json"
    config_path.write_text(json.dumps(config, indent=2))
    log = open(folder / "orthanc.log", "wb")  # noqa: SIM115 - lives as long as the server
    process = subprocess.Popen([binary, str(config_path)], stdout=log, stderr=subprocess.STDOUT)
    server = Orthanc(http_port, dicom_port, storage_port, folder, process)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"Orthanc exited at start: see {folder / 'orthanc.log'}")
        try:
            server.version = server.rest("/system")["Version"]
            return server
        except (urllib.error.URLError, ConnectionError, OSError):
            time.sleep(0.2)
    process.kill()
    raise RuntimeError(f"Orthanc did not answer within 30 s: see {folder / 'orthanc.log'}")


def stop(server: Orthanc) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        server.process.kill()
