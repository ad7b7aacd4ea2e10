#!/usr/bin/env bash
# Smoke test of the packaged BirdView (not part of the default test run).
#
#   packaging/smoke.sh [CHECKPOINT_DIR] [--rebuild]     (default: the bundled demo model)
#
# 1. builds dist/birdview and dist/birdview-worker with packaging/build.sh (or reuses them);
# 2. checks the shell bundles no torch and the runtime imports its model stack;
# 3. opens the bundled sample CT in the frozen viewer, offscreen, and checks it stays up;
# 4. asks the frozen shell `birdview ask --json` about the sample CT's middle axial slice:
#    a frozen shell answers through the bundled `birdview-worker` process (InferenceClient),
#    and the answer must hold a box.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
CHECKPOINT=""; REBUILD=""
for arg in "$@"; do
    if [[ "$arg" == "--rebuild" ]]; then REBUILD=1; else CHECKPOINT="$(cd "$arg" && pwd)"; fi
done
QUESTION="${BIRDVIEW_SMOKE_QUESTION:-Where is the liver located in the image?}"
EXE=""; [[ "${OS:-}" == "Windows_NT" ]] && EXE=".exe"
SHELL_EXE="dist/birdview/birdview$EXE"
WORKER_EXE="dist/birdview-worker/birdview-worker$EXE"
export QT_QPA_PLATFORM=offscreen OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"

if [[ -n "$REBUILD" || ! -x "$SHELL_EXE" || ! -x "$WORKER_EXE" ]]; then
    packaging/build.sh all
fi
echo "== sizes"; du -sh dist/birdview dist/birdview-worker

echo "== the shell carries no model stack"
for pkg in torch transformers bitsandbytes peft accelerate triton; do
    if [[ -e "dist/birdview/_internal/$pkg" ]]; then echo "FAIL: the shell bundles $pkg"; exit 1; fi
done

echo "== the runtime imports its model stack"
"$WORKER_EXE" --check

SAMPLE="$(find dist/birdview -type d -path '*resources/samples/totalseg_ct' | head -n 1)"
[[ -n "$SAMPLE" ]] || { echo "FAIL: no bundled sample CT"; exit 1; }
if [[ -z "$CHECKPOINT" ]]; then
    CHECKPOINT="$(find dist/birdview -type d -path '*resources/demo_model' | head -n 1)"
    [[ -n "$CHECKPOINT" ]] || { echo "FAIL: no bundled demo model"; exit 1; }
    CHECKPOINT="$(cd "$CHECKPOINT" && pwd)"
fi

echo "== the viewer without arguments: the sample CT opens and the demo model loads"
export XDG_STATE_HOME="$(mktemp -d)" XDG_CONFIG_HOME="$(mktemp -d)"  # a first start
set +e
timeout 90 "$SHELL_EXE" > /tmp/birdview-smoke-view.log 2>&1
code=$?
set -e
if [[ $code -ne 124 ]]; then
    echo "FAIL: the viewer exited with $code"; tail -n 20 /tmp/birdview-smoke-view.log; exit 1
fi
LOG="$XDG_STATE_HOME/birdview/log/birdview.log"
grep -q "scanned .* 1 series" "$LOG" || { echo "FAIL: the sample CT did not open"; tail -n 20 "$LOG"; exit 1; }
grep -q "model ready: .*demo_model" "$LOG" || { echo "FAIL: the demo model did not load"; tail -n 20 "$LOG"; exit 1; }
echo "OK: sample CT open, demo model ready"

echo "== ask through the bundled worker"
start=$(date +%s)
answer="$(timeout 600 "$SHELL_EXE" ask --model "$CHECKPOINT" --image "$SAMPLE" --json "$QUESTION")"
echo "$answer"
echo "answered in $(( $(date +%s) - start )) s (worker start, model load and answer)"
echo "$answer" | python3 -c '
import json, sys
reply = json.load(sys.stdin)
assert reply["boxes"], "FAIL: the answer holds no box"
print("OK: %d box(es): %s" % (len(reply["boxes"]), reply["boxes"][0]))
'
