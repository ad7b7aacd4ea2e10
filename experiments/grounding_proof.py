"""Proof that ``birdview-train fit`` teaches grounding: a from-scratch tiny model, phantoms.

Builds phantoms (`experiments.phantoms`), a tiny randomly initialised model
(`trainer.tiny.build_tiny`), trains it with the ``tiny-cpu`` recipe through the real CLI
(``python -m trainer.cli fit``) for about ``--minutes`` of training, with the held-out VG / ROC
evaluation at the end of every "epoch" (a pass over a pool of distinct phantoms sized to last
about ``--eval-every`` minutes, at most ``--max-pool``), then scores the final checkpoint with
``birdview-train predict`` + ``birdview-train evaluate`` on the 200 unseen phantoms, and
writes::

    DIR/curve.csv    minutes of training → VG Recall@0.5, ROC accuracy
    DIR/curve.png    the same as a plot
    DIR/results.json everything (settings, step time, curve, final scores)

::

    OMP_NUM_THREADS=1 python -m experiments.grounding_proof --out runs/proof \
        --minutes 60 --distinct-levels [--real-data BUILD_DATA_FOLDER]

Defaults: a tiny model of the demo family (`birdview.core.families.demo_family`; learned
absolute position embeddings in its vision tower) on 128 px inputs (16 image tokens),
whole-word task tokens, a pool of at most 6000 phantoms.
The settings that met both targets, and what was tried: docs/LEARNING_PROOF.md ("Reproduce").
``OMP_NUM_THREADS`` is passed on to the training and prediction processes.

Training minutes are estimated from a short calibration run (seconds per optimiser step);
time spent in the held-out evaluations is not counted as training.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from birdview.core import families

logger = logging.getLogger("grounding_proof")

# this script lives in the repository (experiments/ is not installed): its parent is the root
REPO = Path(__file__).resolve().parents[1]


def _env() -> dict:
    env = dict(os.environ)
    threads = env.setdefault("OMP_NUM_THREADS", "1")
    # torch takes its thread count from MKL_NUM_THREADS when both are set, so a fixed "1" here
    # silently kept OMP_NUM_THREADS=2 runs on one core
    env.setdefault("MKL_NUM_THREADS", threads)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def run_cli(args: list[str], log: Path) -> None:
    cmd = [sys.executable, "-m", "trainer.cli", *args]
    logger.info("$ %s", " ".join(cmd))
    with open(log, "a", encoding="utf-8") as stream:
        stream.write("$ " + " ".join(cmd) + "\n")
        stream.flush()
        subprocess.run(cmd, check=True, env=_env(), cwd=REPO, stdout=stream, stderr=stream)


# Whole tokens for the phantoms' words and the box markup, as a real tokenizer has them
# (the tiny tokenizer is trained on a few sentences and spells "circle" in five pieces).
TASK_WORDS = (
    "circle", "square", "triangle", "ring", "cross", "cyst",
    "Circle", "Square", "Triangle", "Ring", "Cross", "Cyst",
    " is located at ", "Where is the ", " located in the image?",
    "What anatomical structure is present at the ",
    '```json\n[\n\t{"bbox_2d": [', '], "label": "', '"}\n]\n```', '{"bbox_2d": [', "]}",
)  # fmt: skip


def add_task_words(base: Path) -> int:
    """Add `TASK_WORDS` to the tokenizer of the tiny model in ``base`` and grow its embedding
    and output rows to match (new rows random, like the rest); returns the new length."""
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    processor = AutoProcessor.from_pretrained(base)
    processor.tokenizer.add_tokens(list(TASK_WORDS))
    size = len(processor.tokenizer)
    model = AutoModelForImageTextToText.from_pretrained(base, dtype=torch.float32)
    if size > model.get_input_embeddings().num_embeddings:
        model.resize_token_embeddings(size, mean_resizing=False)
    model.save_pretrained(base, safe_serialization=True)
    processor.save_pretrained(base)
    return size


def number_words(step: int) -> list[str]:
    """One token per coordinate on the 0-1000 grid in steps of ``step``, and the separator
    between them: a box becomes 9 tokens instead of 20 (three digits per number)."""
    return [str(v) for v in range(0, 1001, step)] + [", "]


def add_number_tokens(base: Path, step: int, amplitude: float = 0.0) -> int:
    """Add `number_words` to the tokenizer of the model in ``base``; with ``amplitude`` > 0 the
    new input and output rows start as a sine/cosine code of the number (periods 20 to 4000
    grid units), so that 610 starts close to 600 and far from 100; returns the new length."""
    import math

    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    processor = AutoProcessor.from_pretrained(base)
    words = number_words(step)
    processor.tokenizer.add_tokens(words)
    size = len(processor.tokenizer)
    model = AutoModelForImageTextToText.from_pretrained(base, dtype=torch.float32)
    model.resize_token_embeddings(size, mean_resizing=False)
    if amplitude > 0:
        ids = processor.tokenizer.convert_tokens_to_ids(words[:-1])
        values = torch.tensor([float(w) for w in words[:-1]]).reshape(-1, 1)
        width = model.get_input_embeddings().weight.shape[1]
        half = width // 2
        periods = 20.0 * 200.0 ** (torch.arange(half) / max(half - 1, 1))
        angles = values * (2 * math.pi / periods)
        codes = amplitude * torch.cat([angles.sin(), angles.cos()], dim=1)
        with torch.no_grad():
            for table in (model.get_input_embeddings(), model.get_output_embeddings()):
                table.weight[ids, : codes.shape[1]] = codes
    model.save_pretrained(base, safe_serialization=True)
    processor.save_pretrained(base)
    return size


def sincos_positions(base: Path, scale: float = 1.0) -> bool:
    """Give the vision tower's learned absolute position table (where it has one) a 2-D sine/cosine
    start at the scale of the patch features; returns False for towers without one.

    A random table starts at std 0.02 against patch features of std ≈ 0.6, and in the 35-min
    run it had grown only to 0.05 while the patch features grew to ≈ 29: the image tokens
    carried almost no "where", which grounding needs (docs/LEARNING_PROOF.md)."""
    import math

    import torch
    from transformers import AutoModelForImageTextToText

    model = AutoModelForImageTextToText.from_pretrained(base, dtype=torch.float32)
    table = getattr(getattr(model.model, "visual", None), "pos_embed", None)
    if table is None:
        return False
    count, width = table.weight.shape
    side = math.isqrt(count)
    quarter = width // 4
    # periods from 2 to 4 × side patches, so that neighbours differ and the whole grid is unique
    periods = 2.0 * (2.0 * side) ** (torch.arange(quarter) / max(quarter - 1, 1))
    rows, cols = torch.meshgrid(torch.arange(side), torch.arange(side), indexing="ij")
    angles_r = rows.reshape(-1, 1) * (2 * math.pi / periods)
    angles_c = cols.reshape(-1, 1) * (2 * math.pi / periods)
    codes = torch.cat([angles_r.sin(), angles_r.cos(), angles_c.sin(), angles_c.cos()], dim=1)
    with torch.no_grad():
        table.weight.zero_()
        table.weight[:, : codes.shape[1]] = scale * codes
    model.save_pretrained(base, safe_serialization=True)
    return True


def fit_tiny(base: Path, train_json: Path, out: Path, overrides: list[str], log: Path) -> None:
    run_cli(
        ["fit", "--no-progress", "--config", "tiny-cpu", "--override",
         f"model.base={base}", f"data.train={train_json}", f"out={out}", *overrides],
        log,
    )  # fmt: skip


def score_model(model: Path, data_dir: Path, images: Path, out_dir: Path, log: Path) -> dict:
    """``birdview-train predict`` + ``evaluate`` on test_vg.json and test_roc.json."""
    scores = {}
    out_dir.mkdir(parents=True, exist_ok=True)
    for task, name in (("vg", "test_vg.json"), ("roc", "test_roc.json")):
        data = data_dir / name
        if not data.is_file():
            continue
        predictions = out_dir / f"{task}.jsonl"
        predictions.unlink(missing_ok=True)
        run_cli(["predict", "--model", str(model), "--data", str(data), "--images", str(images),
              "--out", str(predictions), "--batch-size", "16", "--device", "cpu",
              "--no-progress"], log)  # fmt: skip
        result = subprocess.run(
            [sys.executable, "-m", "trainer.cli", "evaluate", "--task", task, "--json",
             str(predictions)],
            check=True, env=_env(), cwd=REPO, capture_output=True, text=True,
        )  # fmt: skip
        scores[task] = json.loads(result.stdout)
        with open(log, "a", encoding="utf-8") as stream:
            stream.write(result.stdout + result.stderr)
    return scores


def _read_csv(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as stream:
        return list(csv.DictReader(stream))


def _curve(run: Path, sec_per_step: float, offset: int = 0) -> list[dict]:
    """One row per held-out evaluation: step, training minutes (steps × calibrated step time),
    VG Recall@0.5 and ROC accuracy (over present modalities, all phantoms are CT); ``offset``
    steps were trained before this run (a curriculum's earlier stage)."""
    evals = json.loads((run / "logs" / "eval.json").read_text(encoding="utf-8"))
    logged = [(int(r["step"]), float(r["seconds"])) for r in _read_csv(run / "logs" / "train.csv")]
    rows = []
    for key in sorted(evals, key=lambda k: int(k.split()[-1])):
        entry = evals[key]
        row = {"epoch": int(key.split()[-1]), "step": entry["step"] + offset}
        row["minutes"] = round(row["step"] * sec_per_step / 60, 2)
        before = [seconds for step, seconds in logged if step <= entry["step"]]
        # wall clock of the fit at that step: includes start-up and the earlier evaluations
        row["wall_minutes"] = round(before[-1] / 60, 2) if before else None
        for stem, task in (("test_vg", "vg"), ("test_roc", "roc")):
            if stem in entry:
                row[task] = entry[stem].get("mean_present")
        rows.append(row)
    return rows


def _single_object_stage(data: Path, count: int, args) -> Path:
    """A curriculum's first stage: ``count`` one-object phantoms (their own seed), scored on
    the same unseen test phantoms as the rest; returns its train.json."""
    from experiments.phantoms import write_phantoms

    single = data.parent / "phantoms-single"
    if not (single / "train.json").is_file():
        write_phantoms(single, train=count, test=0, seed=args.seed + 500,
                       distinct_levels=args.distinct_levels, grid_step=args.grid_step,
                       max_objects=1, grounding_share=args.grounding_share)  # fmt: skip
        for name in ("test_vg.json", "test_roc.json"):
            shutil.copy(data / name, single / name)
        for item in json.loads((data / "test_vg.json").read_text(encoding="utf-8")):
            image = item["id"] + ".png"
            shutil.copy(data / "images" / image, single / "images" / image)
    return single / "train.json"


def _plot(rows: list[dict], png: Path, title: str) -> None:
    # a Figure made directly (not through pyplot) picks no GUI backend
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8, 4.2), dpi=100, facecolor="white")
    axes = figure.add_subplot()
    for task, colour, target, label in (
        ("vg", "#4678be", 0.5, "VG Recall@0.5"),
        ("roc", "#c85a3c", 0.8, "ROC accuracy"),
    ):
        # every curve starts at (0 min, 0): the untrained model
        scored = [r for r in rows if r.get(task) is not None]
        minutes = [0.0] + [r["minutes"] for r in scored]
        values = [0.0] + [r[task] for r in scored]
        axes.plot(minutes, values, color=colour, linewidth=2, marker="o", markersize=4,
                  label=label)  # fmt: skip
        axes.axhline(target, color=colour, linewidth=1, alpha=0.5)
    axes.set_xlim(0, max([r["minutes"] for r in rows] + [1.0]))
    axes.set_ylim(0, 1)
    axes.set_xlabel("minutes of training")
    axes.set_title(title, fontsize=9)
    axes.grid(True, color="#e1e1e1")
    axes.legend(loc="upper left", fontsize=8)
    figure.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(png, format="png", dpi=100)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, help="the folder to write (new)")
    p.add_argument("--minutes", type=float, default=60.0, help="training minutes")
    p.add_argument("--eval-every", type=float, default=5.0, help="minutes between evaluations")
    p.add_argument(
        "--family", default="", help="tiny model family (box format); default: the demo's"
    )
    p.add_argument("--input-px", type=int, default=128, help="side of the model's input image")
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--warmup", type=float, default=0.03)
    p.add_argument("--schedule", default="cosine")
    p.add_argument("--vision-depth", type=int, default=2)
    p.add_argument("--text-layers", type=int, default=4)
    p.add_argument("--patch-size", type=int, default=0,
                   help="vision patch side in px (0: the family's own)")  # fmt: skip
    p.add_argument("--merge-size", type=int, default=2,
                   help="side of the patch square merged into one image token")  # fmt: skip
    p.add_argument(
        "--distinct-levels",
        action="store_true",
        help="one intensity band per bright name (phantoms.DISTINCT_LEVELS)",
    )
    p.add_argument(
        "--no-task-words",
        action="store_true",
        help="keep the tiny tokenizer as built (no whole-word task tokens)",
    )
    p.add_argument(
        "--eval-items",
        type=int,
        default=200,
        help="unseen phantoms per curve point (the final score uses all --test)",
    )
    p.add_argument(
        "--pos-init",
        choices=("random", "sincos"),
        default="random",
        help="start of the vision tower's absolute position table, where it has one",
    )
    p.add_argument("--pos-scale", type=float, default=1.0, help="amplitude of --pos-init sincos")
    p.add_argument(
        "--grid-step",
        type=int,
        default=1,
        help="round training boxes to multiples of this on the 0-1000 grid",
    )
    p.add_argument(
        "--grounding-share",
        type=float,
        default=0.75,
        help="share of training turns that ground (the rest name a boxed object)",
    )
    p.add_argument(
        "--curriculum",
        type=float,
        default=0.0,
        help="share of the steps trained first on one-object phantoms",
    )
    p.add_argument(
        "--freeze",
        default="",
        help="parameter-name parts kept frozen, comma-separated (visual.patch_embed)",
    )
    p.add_argument("--weight-decay", type=float, default=0.0, help="AdamW weight decay")
    p.add_argument(
        "--number-tokens",
        action="store_true",
        help="one token per coordinate on the --grid-step grid (test naming questions on it)",
    )
    p.add_argument(
        "--number-code",
        type=float,
        default=0.0,
        help="amplitude of a sine/cosine start of the number tokens' rows (0: random)",
    )
    p.add_argument("--test", type=int, default=200, help="unseen test phantoms")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--sec-per-step", type=float, default=0.0,
                   help="skip the calibration run and use this step time")  # fmt: skip
    p.add_argument("--max-pool", type=int, default=6000, help="most phantoms to draw")
    p.add_argument("--real-data", default="",
                   help="a build-data folder (test_vg.json, test_roc.json, images/) to score "
                        "the final model on too")  # fmt: skip
    args = p.parse_args(argv)
    args.family = args.family or families.demo_family().key
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")

    import torch

    torch.set_num_threads(1)
    from experiments.phantoms import write_phantoms
    from trainer.tiny import TinySpec, build_tiny

    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    log = out / "commands.log"
    started = time.time()
    pixels = args.input_px * args.input_px
    spec = TinySpec(
        min_pixels=pixels, max_pixels=pixels,
        vision_depth=args.vision_depth, text_layers=args.text_layers,
        patch_size=args.patch_size, merge_size=args.merge_size,
    )  # fmt: skip
    base = out / "base"
    if not (base / "config.json").is_file():
        build_tiny(args.family, base, seed=args.seed, spec=spec)
        if not args.no_task_words:
            logger.info("tokenizer with task words: %d tokens", add_task_words(base))
        if args.number_tokens:
            size = add_number_tokens(base, args.grid_step, args.number_code)
            logger.info("tokenizer with number tokens: %d tokens", size)
        if args.pos_init == "sincos" and not sincos_positions(base, args.pos_scale):
            logger.warning("%s has no absolute position table; --pos-init ignored", args.family)
    common = [
        f"train.lr={args.lr}", f"train.batch_size={args.batch}",
        f"train.per_device_batch={args.batch}", f"train.warmup={args.warmup}",
        f"train.schedule={args.schedule}", f"data.min_pixels={pixels}",
        f"data.max_pixels={pixels}", f"train.seed={args.seed}",
        f"train.weight_decay={args.weight_decay}", f"model.freeze=[{args.freeze}]",
    ]  # fmt: skip

    # calibration: seconds per optimiser step on this machine
    sec_per_step = args.sec_per_step
    if sec_per_step <= 0:
        calib = out / "calibration"
        write_phantoms(
            calib / "data",
            train=args.batch * 30,
            test=0,
            seed=args.seed + 1000,
            distinct_levels=args.distinct_levels,
            grid_step=args.grid_step,
        )
        t0 = time.time()
        fit_tiny(base, calib / "data" / "train.json", calib / "run",
             [*common, "train.max_steps=30", "train.save_every=1000", "eval.files=[]",
              "train.log_every=5"], log)  # fmt: skip
        rows = _read_csv(calib / "run" / "logs" / "train.csv")
        if len(rows) >= 2:
            first, last = rows[0], rows[-1]
            sec_per_step = (float(last["seconds"]) - float(first["seconds"])) / (
                int(last["step"]) - int(first["step"])
            )
        else:
            sec_per_step = (time.time() - t0) / 30
        logger.info("calibration: %.3f s per step of %d", sec_per_step, args.batch)

    steps = max(1, int(args.minutes * 60 / sec_per_step))
    epochs = max(1, round(args.minutes / args.eval_every))
    steps_per_epoch = max(1, steps // epochs)
    pool = steps_per_epoch * args.batch
    if pool > args.max_pool:
        pool = args.max_pool
    logger.info("%d steps, %d evaluations, %d phantoms", steps, epochs, pool)
    data = out / "phantoms"
    if not (data / "train.json").is_file():
        write_phantoms(
            data, train=pool, test=args.test, seed=args.seed,
            distinct_levels=args.distinct_levels, grid_step=args.grid_step,
            grounding_share=args.grounding_share,
            question_step=args.grid_step if args.number_tokens else 1,
        )  # fmt: skip
    pool = json.loads((data / "data_card.json").read_text(encoding="utf-8"))["train"]
    stage_args = [
        "train.keep_checkpoints=1", f"eval.max_items={min(args.eval_items, args.test)}",
        "eval.batch_size=16", "data.max_length=512",
    ]  # fmt: skip
    first_steps = int(steps * args.curriculum)
    first_epochs = max(1, round(epochs * args.curriculum)) if first_steps else 0
    t_fit = time.time()
    start, stages = base, []
    if first_steps:
        single = _single_object_stage(data, first_steps * args.batch // first_epochs, args)
        stages.append((out / "run-single", single, first_steps, first_epochs))
    stages.append((out / "run", data / "train.json", steps - first_steps, epochs - first_epochs))
    for stage_run, train_json, stage_steps, stage_epochs in stages:
        fit_tiny(start, train_json, stage_run,
             [*common, f"train.max_steps={stage_steps}", f"train.epochs={max(stage_epochs, 1)}",
              f"train.save_every={max(stage_steps // 4, 1)}", *stage_args], log)  # fmt: skip
        start = stage_run
    run = out / "run"
    fit_seconds = time.time() - t_fit

    rows, offset = [], 0
    for stage_run, _, stage_steps, _ in stages:
        rows += _curve(stage_run, sec_per_step, offset)
        offset += stage_steps
    with open(out / "curve.csv", "w", newline="", encoding="utf-8") as stream:
        writer = csv.DictWriter(stream, ["epoch", "step", "minutes", "wall_minutes", "vg", "roc"])
        writer.writeheader()
        writer.writerows(rows)
    _plot(rows, out / "curve.png", f"tiny {args.family}, {args.input_px} px, unseen phantoms")

    final = score_model(run, data, data, out / "final", log)
    results = {
        "settings": vars(args),
        "sec_per_step": sec_per_step,
        "steps": steps,
        "phantoms": pool,
        "fit_wall_seconds": round(fit_seconds, 1),
        "curve": rows,
        "final_phantoms": {t: s.get("mean_present") for t, s in final.items()},
        "final_phantoms_full": final,
    }
    if args.real_data:
        real = Path(args.real_data)
        real_scores = score_model(run, real, real, out / "final-real", log)
        results["real_data"] = {t: s.get("mean_present") for t, s in real_scores.items()}
        results["real_data_full"] = real_scores
    results["total_wall_seconds"] = round(time.time() - started, 1)
    (out / "results.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    logger.info("final on unseen phantoms: %s", results["final_phantoms"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
