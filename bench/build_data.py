"""Throughput of ``build-data`` with one worker process against one per core, on real images.

Data: the SA-Med2D demo's five images with their masks, linked under ``--copies`` case names
each (real pixels; new names so the build has many units, as a large dataset has), given as
one SA-Med2D source with ``?modality=ct``. Each run is a fresh process doing the whole build
(plan, masks → boxes, PNGs, journal, lists, card), so start-up costs count. Prints images/s,
images/s per core and the peak memory (RSS) of the largest worker process and of the main
process for each, and the ratio all cores / one worker (target: ≥ 0.8 × cores).

    .venv/bin/python bench/build_data.py [--copies 24] [--workers N]

The machine's other load counts too: on a shared machine run it when it is quiet, and read
one run as noisy (a core taken by another process shows as a lower ratio). To tell the two
apart, the same pure-CPU loop is timed in one process and in N at once before and after the
builds: the ratio the machine itself gives N processes at that moment; and the CPU seconds of
each build (its process, the forkserver and the workers, read from /proc) give the CPU work per
image, N workers against one, which other load does not change: 1.00x means no parallel
overhead, so on free cores the ratio would approach N / that.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("BIRDVIEW_SHARED_DATA", ROOT.parent / "shared" / "data"))

_ONE_RUN = """
import json, resource, sys
from trainer.data.build import BuildSettings, build_dataset
result = build_dataset([sys.argv[1]], sys.argv[2], BuildSettings(), command="bench",
                       workers=int(sys.argv[3]))
print(json.dumps({"images": result.images, "seconds": result.seconds,
                  "worker_kb": result.peak_worker_rss_kb,
                  "main_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


def make_source(root: Path, copies: int) -> Path:
    """An SA-Med2D folder of the demo's images and masks under ``copies`` case names each."""
    demo = SHARED / "sammed2d_demo" / "data_demo"
    images, masks = root / "images", root / "masks"
    images.mkdir(parents=True)
    masks.mkdir()
    for n in range(copies):
        for image in sorted((demo / "images").glob("*.png")):
            stem = f"s{n:04d}{image.stem.replace('_', '')}_1"
            os.link(image, images / f"{stem}.png")
            for mask in sorted((demo / "masks").glob(f"{image.stem}_*.png")):
                os.link(mask, masks / f"{stem}{mask.name[len(image.stem) :]}")
    return root


def run(source: Path, out: Path, workers: int) -> dict:
    """One build in a fresh process; its numbers, with the CPU seconds of it and its workers
    (read from /proc while it runs: the workers are the forkserver's children, not its)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    args = [sys.executable, "-c", _ONE_RUN, f"sammed2d:{source}?modality=ct", str(out)]
    process = subprocess.Popen(
        [*args, str(workers)], env=env, stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    cpu: dict[int, float] = {}
    while process.poll() is None:
        cpu.update(_session_cpu(process.pid))
        time.sleep(0.05)
    stats = json.loads(process.stdout.read().strip().splitlines()[-1])
    stats["cpu_s"] = sum(cpu.values())
    return stats


def _session_cpu(session: int) -> dict[int, float]:
    """CPU seconds (user + system) of every process of ``session`` now."""
    tick = os.sysconf("SC_CLK_TCK")
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == session:  # field 6 of stat: the session id
            found[int(entry.name)] = (int(fields[11]) + int(fields[12])) / tick
    return found


def _spin(_: int) -> None:
    total = 0
    for i in range(6_000_000):
        total += i * i


def capacity(workers: int) -> float:
    """How many times one process's CPU work ``workers`` processes get done now: the same
    pure-CPU loop in 1 process, then in ``workers`` at once (2.0 on two idle cores; less
    when other processes hold cores). The ratio the build can reach on this machine now."""
    import multiprocessing
    import time

    context = multiprocessing.get_context("fork")
    with context.Pool(workers) as pool:
        started = time.monotonic()
        pool.map(_spin, [0])
        one = time.monotonic() - started
        started = time.monotonic()
        pool.map(_spin, range(workers), chunksize=1)
        many = time.monotonic() - started
    return workers * one / many


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=24, help="case names per demo image")
    cores = len(os.sched_getaffinity(0))
    parser.add_argument("--workers", type=int, default=cores, help="the 'all cores' run")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="build-data-bench-") as temp:
        source = make_source(Path(temp) / "source", args.copies)
        before = capacity(args.workers)
        one = run(source, Path(temp) / "one", 1)
        many = run(source, Path(temp) / "many", args.workers)
        after = capacity(args.workers)
        same = _same_lists(Path(temp) / "one", Path(temp) / "many")
    print(f"{one['images']} images (SA-Med2D demo x {args.copies}), {cores} cores here")
    for name, workers, stats in (
        ("1 worker", 1, one),
        (f"{args.workers} workers", args.workers, many),
    ):
        rate = stats["images"] / stats["seconds"]
        print(
            f"{name:>10}: {stats['seconds']:6.1f} s  {rate:6.1f} images/s  "
            f"{rate / workers:6.1f} images/s per worker  "
            f"{stats['images'] / stats['cpu_s']:6.1f} images per CPU-second  peak RSS: largest "
            f"worker {stats['worker_kb'] / 1024:4.0f} MB, main {stats['main_kb'] / 1024:4.0f} MB"
        )
    ratio = one["seconds"] / many["seconds"]
    target = 0.8 * args.workers
    verdict = "meets" if ratio >= target else "misses"
    print(f"ratio {args.workers} workers / 1: {ratio:.2f}x ({verdict} the target {target:.2f}x)")
    print(f"outputs byte-identical: {same}")
    efficiency = (many["images"] / many["cpu_s"]) / (one["images"] / one["cpu_s"])
    print(
        f"CPU work per image, {args.workers} workers against 1: {1 / efficiency:.2f}x (1.00x: "
        "no parallel overhead; load-independent, unlike the wall-clock ratio)"
    )
    print(
        f"noise check: {args.workers} processes of a pure-CPU loop got {before:.2f}x / "
        f"{after:.2f}x the work of one done (before / after the builds; {args.workers:.2f}x "
        "on idle cores): other load on this machine caps the ratio at about that"
    )


def _same_lists(a: Path, b: Path) -> bool:
    names = [p.name for p in sorted(a.iterdir()) if p.is_file()]
    return all((a / n).read_bytes() == (b / n).read_bytes() for n in names)


if __name__ == "__main__":
    main()
