#!/usr/bin/env bash
# Build BirdView as two one-folder programs with PyInstaller (packaging/birdview.spec):
#   dist/birdview/          the viewer shell (run dist/birdview/birdview)
#   dist/birdview-worker/   the model runtime the shell starts
# The shell finds the runtime in its own folder or next to it (or via $BIRDVIEW_WORKER).
#
#   packaging/build.sh [shell|worker|all]     (default all)
#
# Needs the package extra: pip install -e '.[inference,package]'. PYTHON picks the
# interpreter (default: .venv/bin/python if present, else python3). Output: dist/, build/.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
WHAT="${1:-all}"
if [[ -z "${PYTHON:-}" ]]; then
    if [[ -x .venv/bin/python ]]; then PYTHON=.venv/bin/python
    elif [[ -x .venv/Scripts/python.exe ]]; then PYTHON=.venv/Scripts/python.exe
    else PYTHON=python3; fi
fi
start=$(date +%s)
BIRDVIEW_PACKAGE="$WHAT" "$PYTHON" -m PyInstaller --noconfirm --clean \
    --distpath "$ROOT/dist" --workpath "$ROOT/build/pyinstaller" packaging/birdview.spec
end=$(date +%s)
echo "build ($WHAT) took $((end - start)) s"
for d in dist/birdview dist/birdview-worker; do
    if [[ -d "$d" ]]; then
        du -sh "$d"
        # what a download of it weighs (the installer archive)
        echo "$d.tar.gz: $(tar -C dist -czf - "$(basename "$d")" | wc -c | awk '{printf "%.0f MB", $1 / 2^20}')"
    fi
done
