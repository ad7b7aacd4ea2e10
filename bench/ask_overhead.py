"""Ask overhead: one question through the worker process, against the same engine in-process.

Both sides run the same tiny checkpoint (built here with the trainer's tiny factory unless
--model is given) on the same image and question, greedy, with the same token budget and one
torch thread each, so they generate the same tokens. The baseline is `Engine.ask` called
directly (streaming to a no-op callback); the measured path is `InferenceClient.ask` from the
caller's side until its result arrives (pickling the image, the pipe, each streamed `Token`
message, the reply). Runs alternate between the two so drift hits both alike, and the best of
each is compared (other load on the machine only ever adds time); a second figure compares the
time each side spends outside generation, which cancels the two processes' speed difference.
Target: the worker adds at most 5 % to the total time of an answer.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from birdview.inference.offline import go_offline

QUESTION = "Where is the liver located in the image?"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a checkpoint folder (default: a tiny demo-family model)")
    parser.add_argument("--new-tokens", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--size", type=int, default=256, help="image side in pixels")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    go_offline()

    with tempfile.TemporaryDirectory(prefix="birdview-bench-") as scratch:
        model_dir = Path(args.model) if args.model else _build_tiny(Path(scratch))
        return _run(model_dir, args)


def _build_tiny(scratch: Path) -> Path:
    from birdview.core import families
    from trainer.tiny import build_tiny

    key = families.demo_family().key
    return build_tiny(key, scratch / key)


def _run(model_dir: Path, args: argparse.Namespace) -> int:
    import torch

    from birdview.inference.client import InferenceClient
    from birdview.inference.engine import Engine
    from birdview.inference.loader import load_checkpoint
    from birdview.inference.protocol import AskReply, WorkerConfig

    torch.set_num_threads(args.threads)
    image = np.random.default_rng(0).integers(0, 256, (args.size, args.size, 3), dtype=np.uint8)
    engine = Engine(load_checkpoint(model_dir, precision="fp32", device="cpu"))
    config = WorkerConfig(
        str(model_dir), precision="fp32", device="cpu", torch_threads=args.threads
    )

    def in_process() -> tuple[float, float, int]:
        started = time.perf_counter()
        answer = engine.ask(image, QUESTION, max_new_tokens=args.new_tokens, on_token=_ignore)
        return time.perf_counter() - started, answer.seconds, answer.n_new_tokens

    with InferenceClient(timeout_s=300, load_timeout_s=300) as client:

        def through_worker() -> tuple[float, float, int]:
            started = time.perf_counter()
            reply = client.ask(
                image, QUESTION, max_new_tokens=args.new_tokens, on_token=_ignore
            ).result(300)
            elapsed = time.perf_counter() - started
            if not isinstance(reply, AskReply):
                raise SystemExit(f"the worker failed: {reply}")
            return elapsed, reply.seconds, reply.n_new_tokens

        loaded = client.load(config).result(300)
        if loaded.__class__.__name__ != "Loaded":
            raise SystemExit(f"the worker could not load the model: {loaded}")
        in_process(), through_worker()  # warm both up
        runs: dict[str, list[tuple[float, float, int]]] = {"in-process": [], "worker": []}
        for _ in range(args.repeats):
            runs["in-process"].append(in_process())
            runs["worker"].append(through_worker())

    tokens = {n for side in runs.values() for _, _, n in side}
    print(f"checkpoint        {model_dir.name}, image {args.size}², {args.threads} thread(s)")
    print(f"new tokens        {sorted(tokens)} (both sides)")
    for name, side in runs.items():
        totals = [t for t, _, _ in side]
        print(
            f"{name:<17} best {min(totals) * 1000:7.1f} ms   median "
            f"{statistics.median(totals) * 1000:7.1f} ms   ({args.repeats} runs)"
        )
    best_base = min(t for t, _, _ in runs["in-process"])
    best_worker = min(t for t, _, _ in runs["worker"])
    overhead = (best_worker - best_base) / best_worker
    # The same, immune to the two processes running at different speeds: time spent outside
    # generation on each side (preprocessing + parsing, plus the pipe on the worker's side).
    outside = {k: statistics.median(t - g for t, g, _ in side) for k, side in runs.items()}
    transport = outside["worker"] - outside["in-process"]
    print(
        f"overhead (best)   {(best_worker - best_base) * 1000:7.1f} ms"
        f" = {overhead:.1%} of the total"
    )
    print(
        f"pipe + messages   {transport * 1000:7.1f} ms"
        f" = {transport / best_worker:.1%} of the total "
        "(outside-generation time, worker minus in-process, medians)"
    )
    print("target            overhead ≤ 5 %: " + ("met" if overhead <= 0.05 else "NOT met"))
    if len(tokens) != 1:
        print("warning: the two sides generated different numbers of tokens", file=sys.stderr)
    return 0


def _ignore(_text: str) -> None:
    pass


if __name__ == "__main__":
    sys.exit(main())
