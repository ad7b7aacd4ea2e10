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

from tests.pacs import tls_proxy

ORTHANC_AE = "ORTHANC"
USER, PASSWORD = "birdview", "pacs-test-secret"
BEARER_TOKEN = "pacs-test-token"  # accepted by the HTTPS front (`tls_proxy`)
BIRDVIEW_AE = "BIRDVIEW"
BINARY_CANDIDATES = ("/usr/sbin/Orthanc",)  # Debian's package; /usr/sbin is not on every PATH
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
    ca_file: str = ""  # set when the server speaks TLS (HTTPS and DICOM TLS)
    https_port: int = 0  # the HTTPS front (`tls_proxy`), when there is one
    proxy: object = None

    @property
    def dicom_url(self) -> str:
        return f"dicom://{ORTHANC_AE}@127.0.0.1:{self.dicom_port}"

    @property
    def web_url(self) -> str:
        if self.https_port:
            return f"https://127.0.0.1:{self.https_port}/dicom-web"
        return f"http://127.0.0.1:{self.http_port}/dicom-web"

    @property
    def scheme(self) -> str:
        return "http"  # the REST calls of the tests go to Orthanc's own port

    def _open(self, request: urllib.request.Request):
        token = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        request.add_header("Authorization", f"Basic {token}")
        return urllib.request.urlopen(request, timeout=30)

    def rest(self, path: str, data: bytes | None = None, method: str | None = None):
        request = urllib.request.Request(
            f"{self.scheme}://127.0.0.1:{self.http_port}{path}", data=data, method=method
        )
        if data is not None:
            request.add_header("Content-Type", "application/dicom")
        with self._open(request) as answer:
            return json.loads(answer.read() or b"null")

    def forget(self, sop_uid: str) -> None:
        """Delete one instance, so a stored test instance does not change later counts."""
        request = urllib.request.Request(
            f"{self.scheme}://127.0.0.1:{self.http_port}/tools/lookup", data=sop_uid.encode()
        )
        with self._open(request) as answer:
            found = json.loads(answer.read())
        for item in found:
            if item["Type"] == "Instance":
                self.rest(f"/instances/{item['ID']}", method="DELETE")

    def instance_file(self, sop_uid: str) -> bytes:
        """The stored file of one instance, fetched through the REST API."""
        for orthanc_id in self.rest("/instances"):
            if self.rest(f"/instances/{orthanc_id}/simplified-tags")["SOPInstanceUID"] == sop_uid:
                request = urllib.request.Request(
                    f"{self.scheme}://127.0.0.1:{self.http_port}/instances/{orthanc_id}/file"
                )
                with self._open(request) as answer:
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
    binary = shutil.which("Orthanc") or next(
        (p for p in BINARY_CANDIDATES if Path(p).exists()), None
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


def make_certificates(folder: Path) -> tuple[Path, Path, Path]:
    """A test CA and a server certificate for 127.0.0.1 signed by it: (CA, cert, key)."""
    ca_key, ca, key, csr, cert = (
        folder / n for n in ("ca.key", "ca.crt", "s.key", "s.csr", "s.crt")
    )
    ext = folder / "ext.cnf"
    ext.write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n"
        "keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth,clientAuth\n"
    )
    run = lambda *args: subprocess.run(["openssl", *args], check=True, capture_output=True)  # noqa: E731
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(ca_key), "-out", str(ca),
        "-days", "2", "-subj", "/CN=BirdView test CA",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign")  # fmt: skip
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(csr),
        "-subj", "/CN=127.0.0.1")  # fmt: skip
    run("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key),
        "-CAcreateserial", "-out", str(cert), "-days", "2", "-extfile", str(ext))  # fmt: skip
    return ca, cert, key


def start(folder: Path, *, tls: bool = False) -> Orthanc:
    """Orthanc on free ports; with ``tls`` its DICOM port speaks DICOM TLS and an HTTPS front
    (`tls_proxy`) serves its DICOMweb, both with a certificate from a test CA (``ca_file``)."""
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
    ca_file = ""
    if tls:
        ca, cert, key = make_certificates(folder)
        config.update(
            DicomTlsEnabled=True,
            DicomTlsCertificate=str(cert),
            DicomTlsPrivateKey=str(key),
            DicomTlsTrustedCertificates=str(ca),
            DicomTlsRemoteCertificateRequired=False,
        )
        ca_file = str(ca)
    config_path = folder / "orthanc.json"
    config_path.write_text(json.dumps(config, indent=2))
    log = open(folder / "orthanc.log", "wb")  # noqa: SIM115 - lives as long as the server
    process = subprocess.Popen([binary, str(config_path)], stdout=log, stderr=subprocess.STDOUT)
    server = Orthanc(http_port, dicom_port, storage_port, folder, process, ca_file=ca_file)
    if tls:
        server.https_port = free_port()
        basic = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        server.proxy = tls_proxy.serve(
            server.https_port, http_port, str(cert), str(key), BEARER_TOKEN, basic
        )
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
    if server.proxy is not None:
        server.proxy.shutdown()
    server.process.terminate()
    try:
        server.process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        server.process.kill()
