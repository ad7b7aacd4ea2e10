"""Volume grounding: a batched `Engine.sweep` against asking slice by slice, same model and slices.

Builds a tiny checkpoint with the trainer's factory (``--family``; default: the demo
family), loads it in fp32 on the CPU and sweeps the axial slices of the small
TotalSegmentator CT, once with ``batch_size`` slices per generate call and once with one slice
per call (the loop a first version would write). Both generate the same number of new tokens
per slice. Target: batched >= 1.5x faster on the CPU.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from birdview.inference.offline import go_offline

go_offline()

import torch  # noqa: E402

from birdview.core import families  # noqa: E402
from birdview.core.geometry import Plane, to_canonical  # noqa: E402
from birdview.core.io import load, scan  # noqa: E402
from birdview.inference.engine import Engine  # noqa: E402
from birdview.inference.loader import load_checkpoint  # noqa: E402
from trainer.tiny import build_tiny  # noqa: E402

CT = Path(__file__).resolve().parents[2] / "shared" / "data" / "totalseg" / "example_ct_sm.nii.gz"


def timed_sweep(engine: Engine, volume, batch_size: int, tokens: int) -> float:
    started = time.perf_counter()
    results = engine.sweep(
        volume, "Where is the liver?", Plane.AXIAL, batch_size=batch_size, max_new_tokens=tokens
    )
    assert len(results) == volume.shape[0]
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--tokens", type=int, default=24)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--family", default=families.demo_family().key, choices=families.tiny_families()
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    volume = to_canonical(load(scan(CT).entries[0]))
    with tempfile.TemporaryDirectory() as folder:
        engine = Engine(load_checkpoint(build_tiny(args.family, folder), precision="fp32"))
        timed_sweep(engine, volume, args.batch_size, 2)  # warm-up
        one = timed_sweep(engine, volume, 1, args.tokens)
        batched = timed_sweep(engine, volume, args.batch_size, args.tokens)
    n = volume.shape[0]
    print(f"{n} axial slices, {args.tokens} new tokens each, {args.threads} thread(s)")
    print(f"slice by slice        {one:6.2f} s (baseline)")
    speed_up = one / batched
    print(f"batched ({args.batch_size:>2} a call)   {batched:6.2f} s  speed-up {speed_up:.2f}x")
    print("target: speed-up >= 1.5x")
    return 0 if speed_up >= 1.5 else 1


if __name__ == "__main__":
    sys.exit(main())
