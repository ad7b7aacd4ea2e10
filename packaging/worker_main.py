"""Entry script of the frozen model runtime ``birdview-worker`` (PyInstaller).

The frozen viewer starts it through multiprocessing's "spawn" protocol
(``context.set_executable``, see ``birdview.inference._client_process``): it is run as
``birdview-worker --multiprocessing-fork tracker_fd=.. pipe_handle=..`` (or as the resource
tracker, ``-c "from multiprocessing.resource_tracker import main; ..."``), which
``freeze_support()`` (PyInstaller's version) recognises, serves and then exits.

The viewer is a *different* frozen program, so the preparation data it sends names its own
``sys.path`` (its bundle, without torch) and its own ``__main__``; both are dropped here so
this runtime keeps importing from its own bundle.
"""

import multiprocessing
import multiprocessing.spawn
import sys

_prepare = multiprocessing.spawn.prepare


def _prepare_in_this_bundle(data):
    data = {
        k: v
        for k, v in data.items()
        if k not in ("sys_path", "init_main_from_name", "init_main_from_path")
    }
    _prepare(data)


multiprocessing.spawn.prepare = _prepare_in_this_bundle

if __name__ == "__main__":
    multiprocessing.freeze_support()  # serves the spawn/tracker invocations and exits
    # Run by hand: say what this is, and that the viewer starts it.
    from birdview import __version__

    print(f"birdview-worker {__version__}: the BirdView model runtime; the viewer starts it.")
    if "--check" in sys.argv[1:]:  # import the whole model stack, for packaging checks
        import torch
        import transformers

        import birdview.inference.engine  # noqa: F401
        import birdview.inference.loader  # noqa: F401
        import birdview.inference.worker  # noqa: F401

        print(f"torch {torch.__version__}, transformers {transformers.__version__}: ok")
    sys.exit(0)
