"""One BirdView window per user: a second ``birdview FILE`` hands FILE to the running window.

The first instance listens on a local socket (`QLocalServer`: a Unix socket, or a named pipe
on Windows) whose name is private to the user and their settings folder. A later start first
tries to hand its path over (`hand_over`): one JSON line ``{"open": "/abs/path"}`` answered by
``ok``. When nobody listens, or the running instance does not answer within a short timeout
(it may be frozen), the new instance starts normally, so a hung window never keeps the user
from reading a study. The messages carry a path only; nothing else is read from them.
"""

from __future__ import annotations

import getpass
import json
import logging
import os
import time

from PySide6.QtCore import QObject, Signal
from PySide6.QtNetwork import QLocalServer, QLocalSocket

from birdview.core.volume import short_id

__all__ = ["HAND_OVER_TIMEOUT_S", "InstanceServer", "hand_over", "server_name"]

logger = logging.getLogger(__name__)

HAND_OVER_TIMEOUT_S = 2.0
_MAX_MESSAGE_BYTES = 64 * 1024
_REPLY = b"ok\n"


def server_name() -> str:
    """The socket name of this user's BirdView: one per user and settings folder, so another
    account (or a test run with its own HOME) never reaches this window."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (containers)
        user = str(os.getuid()) if hasattr(os, "getuid") else "user"
    home = os.path.expanduser("~")
    config = os.environ.get("XDG_CONFIG_HOME", "")
    return f"birdview-{short_id(f'{user}|{home}|{config}')}"


def hand_over(path: str | None, *, timeout_s: float = HAND_OVER_TIMEOUT_S) -> bool:
    """Ask a running BirdView of this user to open ``path`` (None: only come to the front).

    Returns True when it answered that it will; False when none runs or it did not answer in
    ``timeout_s`` (then start a window of our own).
    """
    socket = QLocalSocket()
    deadline = time.monotonic() + timeout_s
    socket.connectToServer(server_name())
    if not socket.waitForConnected(_ms_left(deadline)):
        return False
    target = os.path.abspath(path) if path else None
    socket.write((json.dumps({"open": target}) + "\n").encode("utf-8"))
    if not socket.waitForBytesWritten(_ms_left(deadline)):
        socket.abort()
        return False
    reply = b""
    while not reply.endswith(b"\n"):
        if not socket.waitForReadyRead(_ms_left(deadline)):
            logger.warning("the running BirdView did not answer in %.1f s", timeout_s)
            socket.abort()
            return False
        reply += bytes(socket.readAll().data())
    socket.disconnectFromServer()
    return reply == _REPLY


def _ms_left(deadline: float) -> int:
    return max(1, int((deadline - time.monotonic()) * 1000))


class InstanceServer(QObject):
    """Listens for later starts and passes on what they ask to open."""

    open_requested = Signal(object)  # str path, or None: just come to the front

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._server = QLocalServer(self)
        self._server.setSocketOptions(QLocalServer.SocketOption.UserAccessOption)
        self._server.newConnection.connect(self._on_new_connection)
        self._buffers: dict[QLocalSocket, bytes] = {}

    @property
    def listening(self) -> bool:
        return self._server.isListening()

    def listen(self) -> bool:
        """Start listening; False (logged) when another live instance holds the name."""
        name = server_name()
        # Asked first: with UserAccessOption, Qt binds elsewhere and renames over the name,
        # which would silently take it from a live (if frozen) instance.
        if _someone_listens(name):
            logger.warning("another BirdView holds the instance socket; this one runs on its own")
            return False
        QLocalServer.removeServer(name)  # a socket file left by an instance that crashed
        if not self._server.listen(name):
            logger.warning("unable to listen for later starts: %s", self._server.errorString())
            return False
        return True

    def close(self) -> None:
        self._server.close()

    def _on_new_connection(self) -> None:
        while self._server.hasPendingConnections():
            socket = self._server.nextPendingConnection()
            self._buffers[socket] = b""
            socket.readyRead.connect(lambda s=socket: self._on_ready_read(s))
            socket.disconnected.connect(lambda s=socket: self._forget(s))

    def _on_ready_read(self, socket: QLocalSocket) -> None:
        data = self._buffers.get(socket, b"") + bytes(socket.readAll().data())
        if len(data) > _MAX_MESSAGE_BYTES:
            logger.warning("instance message too long; dropped")
            socket.abort()
            return
        self._buffers[socket] = data
        if b"\n" not in data:
            return
        path = _requested_path(data.split(b"\n", 1)[0])
        socket.write(_REPLY if path is not False else b"error\n")
        socket.flush()
        socket.disconnectFromServer()
        if path is not False:
            logger.info("a later start handed over %s", "a study" if path else "nothing")
            self.open_requested.emit(path)

    def _forget(self, socket: QLocalSocket) -> None:
        self._buffers.pop(socket, None)
        socket.deleteLater()


def _requested_path(line: bytes) -> str | None | bool:
    """The path a message asks to open, None for none, False for a malformed message."""
    try:
        message = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return False
    target = message.get("open") if isinstance(message, dict) else False
    return target if target is None or isinstance(target, str) else False


def _someone_listens(name: str) -> bool:
    probe = QLocalSocket()
    probe.connectToServer(name)
    alive = probe.waitForConnected(300)
    probe.abort()
    return alive
