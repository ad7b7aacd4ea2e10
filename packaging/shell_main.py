"""Entry script of the frozen viewer ``birdview`` (PyInstaller): the ``birdview`` command."""

import os
import sys


def _clean_child_environment() -> None:
    """Programs this one starts (the ``birdview-worker`` runtime, which is another frozen
    program, or anything Qt opens) must not inherit PyInstaller's bootloader state or its
    library path."""
    os.environ["PYINSTALLER_RESET_ENVIRONMENT"] = "1"
    if sys.platform.startswith("linux") or sys.platform.startswith("freebsd"):
        original = os.environ.pop("LD_LIBRARY_PATH_ORIG", None)
        if original is not None:
            os.environ["LD_LIBRARY_PATH"] = original
        else:
            os.environ.pop("LD_LIBRARY_PATH", None)


if __name__ == "__main__":
    _clean_child_environment()
    from birdview.__main__ import main

    sys.exit(main())
