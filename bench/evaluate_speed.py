"""Scoring a 30k-row prediction file (the size of Med-GRIT's test set) for VG and ROC.

Writes a synthetic JSONL of 30 000 rows spread over the 8 modalities (VG answers with one or
two reference boxes and responses with tags, bare pairs, junk and end tokens; ROC answers with
one- and two-word labels), then prints, as the median of several runs:

- baseline: reading the file and cleaning every response (the least any evaluation must do),
- VG and ROC: `trainer.evaluation.evaluate_file`, each as a ratio to the baseline.

Target: each task well under 60 s on one core (it takes about a second).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from pathlib import Path

from trainer.evaluation import clean_response, evaluate_file, read_predictions
from trainer.medgrit import MODALITIES

ROWS = 30_000
IMAGE_PREFIX = {"x": "x_ray"}


def write_predictions(folder: Path, rows: int, seed: int = 0) -> tuple[Path, Path]:
    rng = random.Random(seed)
    vg, roc = folder / "pred_VG.jsonl", folder / "pred_RO.jsonl"
    labels = ["liver", "kidney left", "hip right", "lumbar vertebra", "spleen", "aorta"]
    with open(vg, "w", encoding="utf-8") as out_vg, open(roc, "w", encoding="utf-8") as out_roc:
        for n in range(rows):
            modality = MODALITIES[n % len(MODALITIES)]
            image = f"{IMAGE_PREFIX.get(modality, modality + '_00')}--Set--case{n}--z_{n:04d}.png"
            x, y = rng.randint(0, 700), rng.randint(0, 700)
            truth = f"<box>({x},{y}),({x + 200},{y + 150})</box>"
            if n % 3 == 0:
                truth += f"<box>({y},{x}),({y + 90},{x + 80})</box>"
            dx = rng.randint(-80, 80)
            guess = f"({x + dx},{y}),({x + 200 + dx},{y + 150})"
            response = [
                f"The organ is at <ref>organ</ref><box>{guess}</box>.<|im_end|>",
                f"It lies at {guess}",
                "I cannot find it.<|endoftext|>",
                f"intro\n<box>{guess}</box>\nmore <box>(1,2),(3)</box>",
            ][n % 4]
            reference = f"The organ is located at <ref>organ</ref>{truth}."
            row = {"id": image[:-4], "image": image, "question": "Where is the organ?"}
            out_vg.write(json.dumps({**row, "annotation": reference, "response": response}) + "\n")
            label = labels[n % len(labels)]
            said = label if n % 5 else rng.choice(labels)
            answer = f"This is the {said.split()[-1]} {said.split()[0]}s.<|im_end|>"
            out_roc.write(
                json.dumps({**row, "annotation": label.title(), "response": answer}) + "\n"
            )
    return vg, roc


def baseline(path: Path) -> None:
    for row in read_predictions(path):
        clean_response(row["response"])


def median_seconds(run, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=ROWS)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        vg, roc = write_predictions(Path(folder), args.rows)
        base = median_seconds(lambda: baseline(vg), args.repeats)
        print(f"{args.rows} rows; baseline (read + clean): {base:.2f} s")
        for task, path in (("vg", vg), ("roc", roc)):
            scores = evaluate_file(path, task)
            seconds = median_seconds(lambda p=path, t=task: evaluate_file(p, t), args.repeats)
            print(
                f"{task}: {seconds:.2f} s ({seconds / base:.2f}x baseline), "
                f"mean {100 * scores.mean:.2f}, target < 60 s: {'ok' if seconds < 60 else 'SLOW'}"
            )


if __name__ == "__main__":
    main()
