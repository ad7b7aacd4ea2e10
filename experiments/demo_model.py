"""The demo checkpoint shipped in resources/demo_model: made by the project's own trainer.

A tiny model of the demo family (`trainer.tiny.build_tiny` of
`birdview.core.families.demo_family`, with the learning proof's whole-word task tokens
and 2-D sine/cosine start of the vision position table) trained from scratch with the
``tiny-cpu`` recipe on

* Med-GRIT conversations that ``birdview-train build-data`` writes from the bundled sample CT
  (resources/samples/totalseg_ct, TotalSegmentator's label map in
  resources/samples/totalseg_ct_labels), axial slices, 15 structures, the grounding, naming
  and not-present turns (captions left out to save CPU time), and
* phantoms (`experiments.phantoms`),

then scored with ``birdview-train predict`` + ``evaluate`` on the sample CT's training slices,
on held-out slices of the same CT (every fifth slice, never trained on) and on unseen
phantoms. It is a demonstration of the workflow on the bundled study, not a medical model; its
model card (README.md in the checkpoint) says so, with the scores::

    OMP_NUM_THREADS=1 python -m experiments.demo_model --out runs/demo \\
        --install resources/demo_model

Everything is seeded (``--seed``); ``--steps`` fixes the length (the defaults took 11 minutes
of wall clock on the 2-core machine, sharing it with other jobs).
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import time
from pathlib import Path

from birdview.core import families
from birdview.core.model_card import (
    ModelCard,
    Overrides,
    TrainedOn,
    write_card,
)
from experiments.grounding_proof import (
    REPO,
    add_task_words,
    fit_tiny,
    run_cli,
    score_model,
    sincos_positions,
)
from trainer.checkpoint_card import card_from_data_card

logger = logging.getLogger("demo_model")

SAMPLE_CT = REPO / "resources" / "samples" / "totalseg_ct"
SAMPLE_LABELS = REPO / "resources" / "samples" / "totalseg_ct_labels"
LABEL_FILE = "example_seg_dicom.nii.gz"
INPUT_PX = 128
# Axial slices never trained on: every fifth, away from the middle slice the viewer opens on.
HELD_OUT_EVERY, HELD_OUT_AT = 5, 2
SIZE_LIMIT_MB = 30
# The structures the demo is taught (TotalSegmentator value: name), large organs and vessels a
# teacher would ask about; the kidneys and the gallbladder lie outside this 20-slice slab, so
# the model learns to say they are not there. Ribs and muscles are left out.
DEMO_LABELS = {
    5: "liver", 1: "spleen", 6: "stomach", 7: "pancreas", 20: "colon", 52: "aorta",
    63: "inferior_vena_cava", 64: "portal_vein_and_splenic_vein", 79: "spinal_cord",
    33: "vertebrae_T11", 32: "vertebrae_T12", 8: "adrenal_gland_right", 4: "gallbladder",
    2: "kidney_right", 3: "kidney_left",
}  # fmt: skip


DEMO_NAME = "BirdView demo model"
DEMO_DESCRIPTION = (
    "A workflow demonstration, not a medical model: trained on the bundled sample CT only "
    "(and geometric phantoms), wrong on any other image."
)


def sample_source(folder: Path) -> Path:
    """The sample CT as a NIfTI image with its label map on the same header, the class names
    and the licence: a ``nifti`` source for ``build-data``.

    TotalSegmentator's label map lies on the CT's grid but is stored with the y axis flipped
    (RAS); it is resampled (nearest neighbour, an exact reindexing) onto the CT's header so
    that build-data pairs the two."""
    import SimpleITK as sitk

    folder.mkdir(parents=True, exist_ok=True)
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(SAMPLE_CT)))
    image = reader.Execute()
    labels = sitk.ReadImage(str(SAMPLE_LABELS / LABEL_FILE))
    on_grid = sitk.Resample(labels, image, sitk.Transform(), sitk.sitkNearestNeighbor, 0)
    sitk.WriteImage(image, str(folder / "ct.nii.gz"))
    sitk.WriteImage(on_grid, str(folder / LABEL_FILE))
    shutil.copy(SAMPLE_LABELS / "classes.json", folder / "classes.json")
    shutil.copy(SAMPLE_LABELS / "LICENSE", folder / "LICENSE")
    return folder


def _z(item: dict) -> int:
    return int(item["id"].rsplit("_", 1)[1])


def _held_out(item: dict) -> bool:
    return _z(item) % HELD_OUT_EVERY == HELD_OUT_AT


def _read(path: Path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else []


def _write(path: Path, items: list[dict]) -> None:
    from trainer.medgrit import write_items

    write_items(path, items)


def _merge_images(source: Path, data: Path) -> None:
    (data / "images").mkdir(parents=True, exist_ok=True)
    for image in (source / "images").iterdir():
        target = data / "images" / image.name
        if not target.exists():
            shutil.copy(image, target)


def short_turns(item: dict, per_item: int = 6) -> list[dict]:
    """The item's grounding, naming and not-present turns (region captions and image
    descriptions left out: long answers cost most of the CPU time and the demo is about boxes),
    regrouped into items of at most ``per_item`` turns, each first question with the image."""
    first_question = item["conversations"][0][0]
    picture, first_question = first_question.split("\n", 1)
    turns = [[first_question, item["conversations"][0][1]], *item["conversations"][1:]]
    kept = [t for t in turns if _is_short(*t)]
    items = []
    for start in range(0, len(kept), per_item):
        group = [list(t) for t in kept[start : start + per_item]]
        group[0][0] = f"{picture}\n{group[0][0]}"
        items.append({"id": item["id"], "conversations": group})
    return items


def _is_short(question: str, answer: str) -> bool:
    grounding = "<box>" in answer or "<box>" not in question and len(answer.split()) <= 9
    naming = "<box>" in question and len(answer.split()) <= 5
    return grounding or naming


def build_data(work: Path, seed: int, phantoms: int, repeat: int, log: Path) -> Path:
    """Write ``work/data``: train.json (the sample's training slices: paraphrased multi-turn
    items × ``repeat``, the app's own wording × ``repeat // 5``; phantoms) and the test files
    ``sample_train_*``, ``sample_held_*`` and ``phantom_*`` (vg, roc)."""
    from experiments.phantoms import write_phantoms

    source = sample_source(work / "source")
    labels = ",".join(f"{value}:{name}" for value, name in DEMO_LABELS.items())
    spec = f"nifti:{source}?dataset=totalseg&modality=ct&labels={labels}"
    common = ["--planes", "axial", "--seed", str(seed)]
    run_cli(["build-data", spec, "--out", str(work / "sample_train"), "--test-fraction", "0",
          *common], log)  # fmt: skip
    run_cli(["build-data", spec, "--out", str(work / "sample_test"), "--test-fraction", "1",
          *common], log)  # fmt: skip
    write_phantoms(work / "phantoms", train=phantoms, test=200, seed=seed, distinct_levels=True)
    data = work / "data"
    for folder in ("sample_train", "sample_test", "phantoms"):
        _merge_images(work / folder, data)
    paraphrased = [
        short
        for item in _read(work / "sample_train" / "train.json")
        if not _held_out(item)
        for short in short_turns(item)
    ]
    worded = []
    for task in ("vg", "roc"):
        test = _read(work / "sample_test" / f"test_{task}.json")
        worded += [i for i in test if not _held_out(i)]
        _write(data / f"sample_train_{task}.json", [i for i in test if not _held_out(i)])
        _write(data / f"sample_held_{task}.json", [i for i in test if _held_out(i)])
        shutil.copy(work / "phantoms" / f"test_{task}.json", data / f"phantom_{task}.json")
    train = paraphrased * repeat + worded * max(1, repeat // 5)
    _write(data / "train.json", train + _read(work / "phantoms" / "train.json"))
    return data


def _scores(run: Path, data: Path, out: Path, log: Path) -> dict:
    """VG Recall@0.5 and ROC accuracy of ``run`` on the three test sets."""
    scores = {}
    for name in ("sample_train", "sample_held", "phantom"):
        folder = out / name
        folder.mkdir(parents=True, exist_ok=True)
        for task in ("vg", "roc"):
            shutil.copy(data / f"{name}_{task}.json", folder / f"test_{task}.json")
        result = score_model(run, folder, data, folder, log)
        scores[name] = {
            task: {"score": r.get("mean_present"), "items": _count(folder / f"test_{task}.json")}
            for task, r in result.items()
        }
    return scores


def _count(path: Path) -> int:
    return len(_read(path))


CARD = """\
# BirdView demo model — a workflow demonstration, not a medical model

A tiny {family}-family model ({params:.1f} M parameters, {size_mb:.1f} MB) trained from scratch
on a 2-core CPU by BirdView's own trainer (`python -m experiments.demo_model`, seed
{seed}, {steps} steps of {batch}, {minutes:.0f} min of wall clock). It exists so that BirdView
shows its refer-and-ground workflow on the bundled sample CT without a GPU and without a
download. **It has seen one CT and some geometric phantoms. It knows nothing about medicine,
is wrong on any other image, and must never be used for a clinical decision.**

## Training data
- Med-GRIT conversations (grounding, naming a boxed region, "not in this image" answers; the
  long region captions and image descriptions were left out to save CPU time) built by
  `birdview-train build-data` from the bundled TotalSegmentator sample CT
  (resources/samples/totalseg_ct, Apache-2.0, see its ATTRIBUTION.md) and TotalSegmentator's
  label map of it (model output, not manual ground truth), axial slices, {structures} structures;
  slices {held} were held out. Each training slice repeated {repeat}×.
- {phantoms} phantom slices (named shapes, `experiments.phantoms`, distinct
  intensities).
- Recipe `tiny-cpu` (everything trains, fp32, packed), lr {lr}, batch {batch}. Data card:
  `data_card.json` next to this file.

## Measured scores (`birdview-train predict` + `evaluate`, BiRD's metrics)
| test set | VG Recall@0.5 | ROC accuracy |
|---|---|---|
{rows}

"Sample CT, training slices" are slices it was trained on (memorised answers); the held-out
slices are neighbours of those (2 mm apart); the phantoms were never seen.

Grounding questions per structure on the sample CT (training + held-out slices) answered with
a box on it (IoU > 0.5):
{structures_found}
"""


def hits_per_structure(*prediction_files: Path) -> dict[str, list[int]]:
    """Structure → [hits, questions] over VG prediction files (BiRD's hit rule)."""
    from trainer.evaluation import clean_response, vg_hits

    found: dict[str, list[int]] = {}
    for path in prediction_files:
        for line in path.read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            name = row["question"].split("Where is the ")[-1].split(" located")[0]
            hits, total = vg_hits(row["annotation"], clean_response(row["response"]))
            if total:
                counts = found.setdefault(name, [0, 0])
                counts[0] += min(hits, 1)
                counts[1] += 1
    return found


def model_card(results: dict) -> str:
    names = {
        "sample_train": "sample CT, training slices",
        "sample_held": "sample CT, held-out slices",
        "phantom": "200 unseen phantoms",
    }
    rows = []
    for key, label in names.items():
        row = results["scores"][key]
        cells = [f"{row[t]['score']:.2f} ({row[t]['items']} items)" for t in ("vg", "roc")]
        rows.append(f"| {label} | {cells[0]} | {cells[1]} |")
    found = results["structures_found"]
    listed = ", ".join(f"{name} {hits}/{total}" for name, (hits, total) in sorted(found.items()))
    return CARD.format(rows="\n".join(rows), structures_found=listed, **results["card"])


def demo_card(data_card_json: Path) -> ModelCard:
    """The card in the demo's birdview.json: the sample CT's modality, structures and plane,
    from its data card. The phantoms are shapes, not anatomy, so the card leaves them out and
    the app warns on any other study or structure. It was taught single questions, so a
    conversation's earlier turns are not sent with the next one."""
    data_card = json.loads(data_card_json.read_text(encoding="utf-8"))
    base = ModelCard(
        DEMO_NAME,
        description=DEMO_DESCRIPTION,
        trained_on=TrainedOn(body_regions=("abdomen",)),
        overrides=Overrides(history=False),
    )
    return card_from_data_card(data_card, name=DEMO_NAME, base_card=base)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, help="work folder (new or resumable)")
    p.add_argument("--steps", type=int, default=800, help="optimiser steps")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--phantoms", type=int, default=1000, help="phantom training slices")
    p.add_argument("--repeat", type=int, default=20, help="copies of each sample CT item")
    p.add_argument(
        "--pos-scale",
        type=float,
        default=8.0,
        help="amplitude of the vision position table's sine/cosine start",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--install", default="", help="copy the checkpoint and card here")
    p.add_argument("--family", default="", help="tiny model family; default: the demo family")
    args = p.parse_args(argv)
    args.family = args.family or families.demo_family().key
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")

    import torch
    from safetensors.torch import load_file

    torch.set_num_threads(1)
    from trainer.tiny import TinySpec, build_tiny

    work = Path(args.out).resolve()
    work.mkdir(parents=True, exist_ok=True)
    log = work / "commands.log"
    pixels = INPUT_PX * INPUT_PX
    base = work / "base"
    if not (base / "config.json").is_file():
        spec = TinySpec(min_pixels=pixels, max_pixels=pixels)
        build_tiny(args.family, base, seed=args.seed, spec=spec)
        add_task_words(base)
        sincos_positions(base, args.pos_scale)
    data = work / "data"
    if not (data / "train.json").is_file():
        build_data(work, args.seed, args.phantoms, args.repeat, log)
    run = work / "run"
    started = time.time()
    fit_tiny(base, data / "train.json", run,
         [f"train.lr={args.lr}", f"train.batch_size={args.batch}",
          f"train.per_device_batch={args.batch}", f"train.max_steps={args.steps}",
          "train.epochs=1", f"train.seed={args.seed}", f"data.min_pixels={pixels}",
          f"data.max_pixels={pixels}", "data.max_length=1024", "eval.files=[]",
          f"train.save_every={args.steps}", "train.keep_checkpoints=1"], log)  # fmt: skip
    minutes = (time.time() - started) / 60
    scores = _scores(run, data, work / "scores", log)
    model = run
    weights = model / "model.safetensors"
    params = sum(v.numel() for v in load_file(weights).values())
    vg_files = [work / "scores" / name / "vg.jsonl" for name in ("sample_train", "sample_held")]
    results = {
        "scores": scores,
        "structures_found": hits_per_structure(*vg_files),
        "card": {
            "family": families.get(args.family).title,
            "params": params / 1e6,
            "size_mb": weights.stat().st_size / 2**20,
            "seed": args.seed,
            "steps": args.steps,
            "batch": args.batch,
            "lr": args.lr,
            "minutes": minutes,
            "repeat": args.repeat,
            "phantoms": args.phantoms,
            "structures": len(DEMO_LABELS),
            "held": ", ".join(str(z) for z in range(HELD_OUT_AT, 20, HELD_OUT_EVERY)),
        },  # fmt: skip
    }
    (work / "results.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    (model / "README.md").write_text(model_card(results), encoding="utf-8")
    shutil.copy(work / "sample_train" / "data_card.json", model / "data_card.json")
    write_card(model, demo_card(model / "data_card.json"))
    logger.info("scores: %s", json.dumps(scores))
    if args.install:
        install(model, Path(args.install))
    return 0


SHIPPED = (
    "config.json", "generation_config.json", "model.safetensors", "tokenizer.json",
    "tokenizer_config.json", "processor_config.json", "chat_template.jinja",
    "birdview.json", "README.md", "data_card.json",
)  # fmt: skip


def install(model: Path, target: Path) -> None:
    """Copy the files the viewer needs (no optimiser state, no logs) to ``target``."""
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    for name in SHIPPED:
        if (model / name).is_file():
            shutil.copy(model / name, target / name)
    size = sum(f.stat().st_size for f in target.iterdir()) / 2**20
    if size > SIZE_LIMIT_MB:
        raise SystemExit(f"the demo model is {size:.1f} MB, over {SIZE_LIMIT_MB} MB")
    logger.info("installed %s (%.1f MB)", target, size)


if __name__ == "__main__":
    sys.exit(main())
