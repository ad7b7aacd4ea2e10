"""The session fixture ``taught_model``: a tiny qwen2_vl checkpoint taught known answers about
the bundled sample CT (`tests.ui.taught`), built once per test session, offline.

Import it into a test module or conftest to use it::

    from tests.ui.model_fixture import taught_model  # noqa: F401
"""

from __future__ import annotations

import socket

import pytest

from tests.ui.taught import TaughtModel, teach_viewer_model

__all__ = ["taught_model"]

# The model built in this process: a module that imports the fixture under its own name gets
# a fixture definition of its own, and should not build the model a second time.
_built: list[TaughtModel] = []


class NetworkBlocked(RuntimeError):
    pass


def _refuse(*args, **kwargs):
    raise NetworkBlocked(f"building the taught model tried to open a connection: {args!r}")


@pytest.fixture(scope="session")
def taught_model(tmp_path_factory: pytest.TempPathFactory) -> TaughtModel:
    """The taught checkpoint and the answers it gives (see `tests.ui.taught`), about 30 s to
    build on one CPU thread; torch runs on one thread and sockets refuse to connect while it
    is built."""
    import torch

    if _built and (_built[0].model_dir / "model.safetensors").is_file():
        return _built[0]
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(socket.socket, "connect", _refuse)
        mp.setattr(socket.socket, "connect_ex", _refuse)
        mp.setattr(socket, "create_connection", _refuse)
        taught = teach_viewer_model(tmp_path_factory.mktemp("taught_model") / "qwen2_vl")
    _built[:] = [taught]
    return taught
