"""The rooms' import rules (pyproject's import-linter contracts) and what start-up loads."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO


def test_import_linter_contracts_hold():
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which(
        "lint-imports"
    )
    assert lint, "import-linter is part of the dev extra"
    done = subprocess.run([lint], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr


def test_core_loads_no_qt_no_torch_no_simpleitk():
    code = (
        "import sys, birdview.core.io, birdview.core.display, birdview.core.info;"
        "bad = [m for m in ('PySide6', 'torch', 'transformers', 'SimpleITK') if m in sys.modules];"
        "print(','.join(bad))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""


def test_ruff_finds_nothing():
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    assert ruff, "ruff is part of the dev extra"
    done = subprocess.run(
        [ruff, "check", "birdview", "trainer", "tests", "bench"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_no_python_file_outside_the_families_package_names_a_family():
    """What is family-specific lives in birdview/core/families; everything else asks it."""
    import re

    from birdview.core import families
    from birdview.core.box_codecs import MEDGRIT

    # "medgrit" is also the dataset's own format, which the trainer rightly names.
    keys = [f.key for f in families.all_families() if f.codec is not MEDGRIT]
    names = re.compile("|".join(sorted(keys, key=len, reverse=True)))
    allowed = REPO / "birdview" / "core" / "families"
    found = []
    for root in ("birdview", "trainer", "bench", "packaging"):
        for path in sorted((REPO / root).rglob("*.py")):
            if allowed in path.parents:
                continue
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if names.search(line):
                    found.append(f"{path.relative_to(REPO)}:{number}: {line.strip()}")
    assert not found, "\n".join(found)


def test_no_module_imports_itself_through_others():
    """Import cycles among birdview's and trainer's modules, each printed as a chain.

    Imports under ``TYPE_CHECKING`` and inside functions count too: they still tie the two
    modules together, and a cycle is broken by moving the names both need into a small module
    both import (as `trainer.data.result` and `birdview.ui.actions` do).
    """
    import grimp

    graph = grimp.build_graph("birdview", "trainer", cache_dir=None)
    cycles: dict[frozenset[str], str] = {}
    for module in sorted(graph.modules):
        for imported in sorted(graph.find_modules_directly_imported_by(module) - {module}):
            back = graph.find_shortest_chain(importer=imported, imported=module)
            if back:
                cycle = (module, *back)
                cycles.setdefault(frozenset(cycle), " -> ".join(cycle))
    assert not cycles, "import cycles:\n" + "\n".join(sorted(cycles.values()))
