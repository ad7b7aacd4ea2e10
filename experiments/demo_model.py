"""The demo checkpoint shipped in resources/demo_model: made by the project's own trainer.

A tiny model of the demo family (`trainer.tiny.build_tiny` of
`birdview.core.families.demo_family`, with the learning proof's whole-word task tokens
and 2-D sine/cosine start of the vision position table) trained from scratch with the
``tiny-cpu`` recipe on every axial slice of the bundled sample CT
(resources/samples/totalseg_ct) with TotalSegmentator's label map of it
(resources/samples/totalseg_ct_labels):

* for each slice and each structure in `DEMO_LABELS`, the grounding question as the app asks
  it (and as a person types it, "where is the liver?"), answered with the label map's boxes
  when the structure is on the slice and with "There is no liver in this image." when it is
  not, so that a volume sweep shows where each structure is and where it is not;
* the naming question ("What anatomical structure is present at <box>?") for each box,

all written by ``birdview-train build-data`` (the not-present answers with its wording), one
question per conversation, as the app asks them. It is then measured the way the app is used:
a volume sweep per structure with the real engine, scored against the label map
(`experiments.demo_sweep`), and those numbers go into its model card. It is a demo trained on
the data it shows, not a medical model; the card says so::

    OMP_NUM_THREADS=1 python -m experiments.demo_model --out runs/demo \\
        --install resources/demo_model

Everything is seeded (``--seed``); ``--steps`` fixes the length.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
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
from experiments.demo_card import card_text, description, portable_record, portable_text
from experiments.demo_sweep import sweep_scores
from experiments.grounding_proof import (
    REPO,
    add_task_words,
    fit_tiny,
    run_cli,
    sincos_positions,
)
from trainer.checkpoint_card import card_from_data_card

logger = logging.getLogger("demo_model")

SAMPLE_CT = REPO / "resources" / "samples" / "totalseg_ct"
SAMPLE_LABELS = REPO / "resources" / "samples" / "totalseg_ct_labels"
LABEL_FILE = "example_seg_dicom.nii.gz"
INPUT_PX = 128
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
# The vision tower and merger keep their random start. Trained with the rest they grew one
# common component (image tokens 1000 times the norm of text tokens) under which neighbouring
# slices differed by 1 %, against 10-25 % at the start, and the model drew the same box on
# every slice; frozen, each slice stays its own random code for the language model to learn.
FROZEN_VISION = ("model.train_vision=false", "model.train_merger=false")


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


def demo_names() -> dict[int, str]:
    """`DEMO_LABELS` as the app and the data builder write them ("inferior vena cava")."""
    from trainer.data.names import readable

    return {value: readable(label) for value, label in DEMO_LABELS.items()}


def _read(path: Path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else []


def _item(item_id: str, picture: str, question: str, answer: str) -> dict:
    return {"id": item_id, "conversations": [[f"{picture}\n{question}", answer]]}


def _typed(name: str) -> str:
    """The question as a person types it into the chat (the app sends it as typed)."""
    return f"where is the {name}?"


def grounding_items(vg_items: list[dict], names: list[str]) -> list[dict]:
    """One grounding item per slice and name, in the app's wording and as typed: the
    build's answer where the name is on the slice, its not-present answer where not.

    ``vg_items`` are build-data's test items (one present structure each, app wording)."""
    from birdview.core.prompts import grounding_question
    from trainer.data.conversations import absent_turn

    slices: dict[str, tuple[str, dict[str, str]]] = {}
    for item in vg_items:
        question, answer = item["conversations"][0]
        picture, asked = question.split("\n", 1)
        name = asked.removeprefix("Where is the ").removesuffix(" located in the image?")
        slices.setdefault(item["id"], (picture, {}))[1][name] = answer
    items = []
    for item_id, (picture, present) in sorted(slices.items()):
        for name in names:
            answer = present.get(name) or absent_turn(name, None).answer
            for question in (grounding_question(name), _typed(name)):
                items.append(_item(item_id, picture, question, answer))
    return items


def build_data(work: Path, seed: int, log: Path) -> tuple[Path, int]:
    """Write ``work/data``: images, ``taught.json`` (every slice's questions once) and the
    build's data card; returns the folder and the number of taught items."""
    source = sample_source(work / "source")
    labels = ",".join(f"{value}:{name}" for value, name in DEMO_LABELS.items())
    spec = f"nifti:{source}?dataset=totalseg&modality=ct&labels={labels}"
    # every slice in the test files: one question per item, the app's wording
    run_cli(["build-data", spec, "--out", str(work / "sample"), "--test-fraction", "1",
             "--negative-rate", "0", "--planes", "axial", "--seed", str(seed)], log)  # fmt: skip
    built = work / "sample"
    data = work / "data"
    if data.exists():
        shutil.rmtree(data)
    shutil.copytree(built / "images", data / "images")
    names = list(demo_names().values())
    taught = grounding_items(_read(built / "test_vg.json"), names)
    taught += _read(built / "test_roc.json")
    (data / "taught.json").write_text(json.dumps(taught, indent=1), encoding="utf-8")
    shutil.copy(built / "data_card.json", data / "data_card.json")
    return data, len(taught)


def write_train(data: Path, steps: int, batch: int, seed: int) -> Path:
    """``train.json``: the taught items repeated (each copy shuffled) to fill ``steps``
    optimiser steps of ``batch``."""
    taught = _read(data / "taught.json")
    rng = random.Random(seed)
    train: list[dict] = []
    while len(train) < steps * batch:
        copy = list(taught)
        rng.shuffle(copy)
        train += copy
    path = data / "train.json"
    path.write_text(json.dumps(train), encoding="utf-8")
    return path


def demo_card(data_card_json: Path, scores: dict) -> ModelCard:
    """The card in the demo's birdview.json: the sample CT's structures and plane from its
    data card (CT is named here: that build put every slice in its test files, so it counts
    no training modality), and a description that says what it is and how it measured. It
    was taught single questions, so a conversation's earlier turns are not sent with the next."""
    data_card = json.loads(data_card_json.read_text(encoding="utf-8"))
    base = ModelCard(
        DEMO_NAME,
        description=description(scores),
        trained_on=TrainedOn(modalities=("CT",), body_regions=("abdomen",)),
        overrides=Overrides(history=False),
    )
    return card_from_data_card(data_card, name=DEMO_NAME, base_card=base)


def _base_model(work: Path, family: str, seed: int, pos_scale: float) -> Path:
    from trainer.tiny import TinySpec, build_tiny

    pixels = INPUT_PX * INPUT_PX
    base = work / "base"
    if not (base / "config.json").is_file():
        spec = TinySpec(min_pixels=pixels, max_pixels=pixels)
        build_tiny(family, base, seed=seed, spec=spec)
        add_task_words(base)
        sincos_positions(base, pos_scale)
    return base


def center_image_tokens(base: Path, images: list[Path]) -> int:
    """Start the (frozen) vision mergers' output bias at minus their mean output over
    ``images``, so that an image token carries what sets its slice apart from the others
    rather than what all slices share; returns how many mergers were centred.

    At the random start an image token is mostly a part common to all slices (neighbouring
    slices differ by 3-10 % of its length), and averaged over its tokens a slice is that common
    part; centred, the average is what differs between slices."""
    import torch
    from PIL import Image
    from transformers import AutoModelForImageTextToText, AutoProcessor

    model = AutoModelForImageTextToText.from_pretrained(base, dtype=torch.float32).eval()
    processor = AutoProcessor.from_pretrained(base)
    visual = model.model.visual
    mergers = [visual.merger, *getattr(visual, "deepstack_merger_list", [])]
    outputs: dict[int, list] = {k: [] for k in range(len(mergers))}
    hooks = [
        merger.register_forward_hook(lambda _m, _i, out, k=k: outputs[k].append(out.detach()))
        for k, merger in enumerate(mergers)
    ]
    with torch.no_grad():
        for path in images:
            batch = processor.image_processor(
                images=[Image.open(path).convert("RGB")], return_tensors="pt"
            )
            model.model.get_image_features(batch["pixel_values"], batch["image_grid_thw"])
        for hook in hooks:
            hook.remove()
        for k, merger in enumerate(mergers):
            merger.linear_fc2.bias -= torch.cat(outputs[k]).mean(dim=0)
    model.save_pretrained(base, safe_serialization=True)
    return len(mergers)


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, help="work folder (new or resumable)")
    p.add_argument("--steps", type=int, default=1500, help="optimiser steps")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--lr", type=float, default=2e-3)
    # Small, unlike the learning proof's 8: there the "where" of a shape had to be read from
    # the image; here neighbouring slices differ by little, and a position code 13 times the
    # patch features drowned that difference (at 8 the model drew the same box on every slice).
    p.add_argument("--pos-scale", type=float, default=0.5,
                   help="amplitude of the vision position table's sine/cosine start")  # fmt: skip
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--install", default="", help="copy the checkpoint and card here")
    p.add_argument("--family", default="", help="tiny model family; default: the demo family")
    p.add_argument("--measure-only", action="store_true",
                   help="score and describe an existing run (no training)")  # fmt: skip
    args = p.parse_args(argv)
    args.family = args.family or families.demo_family().key
    return args


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    import torch

    torch.set_num_threads(1)
    work = Path(args.out).resolve()
    work.mkdir(parents=True, exist_ok=True)
    log = work / "commands.log"
    run = work / "run"
    pixels = INPUT_PX * INPUT_PX
    minutes = 0.0
    if not args.measure_only:
        data, taught = build_data(work, args.seed, log)
        base = _base_model(work, args.family, args.seed, args.pos_scale)
        center_image_tokens(base, sorted((data / "images").glob("*.png")))
        train = write_train(data, args.steps, args.batch, args.seed)
        started = time.time()
        fit_tiny(base, train, run,
                 [f"train.lr={args.lr}", f"train.batch_size={args.batch}",
                  f"train.per_device_batch={args.batch}", f"train.max_steps={args.steps}",
                  "train.epochs=1", f"train.seed={args.seed}", f"data.min_pixels={pixels}",
                  f"data.max_pixels={pixels}", "data.max_length=1024", "eval.files=[]",
                  f"train.save_every={max(1, args.steps // 6)}", "train.keep_checkpoints=1",
                  *FROZEN_VISION],
                 log)  # fmt: skip
        minutes = (time.time() - started) / 60
        settings = {"seed": args.seed, "steps": args.steps, "batch": args.batch, "lr": args.lr,
                    "taught_items": taught, "minutes": round(minutes, 1)}  # fmt: skip
        (work / "settings.json").write_text(json.dumps(settings, indent=2), encoding="utf-8")
    settings = json.loads((work / "settings.json").read_text(encoding="utf-8"))
    started = time.time()
    scores = sweep_scores(run, SAMPLE_CT, SAMPLE_LABELS / LABEL_FILE, demo_names())
    logger.info("swept in %.0f s", time.time() - started)
    results = {name: score.to_dict() for name, score in scores.items()}
    (work / "results.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    for name, score in results.items():
        logger.info("%s: presence %.2f, median IoU %.2f", name, score["presence_accuracy"],
                    score["median_iou"])  # fmt: skip
    describe(run, work / "data" / "data_card.json", results, settings, args.family)
    if args.install:
        install(run, Path(args.install))
    return 0


def describe(run: Path, data_card: Path, results: dict, settings: dict, family: str) -> None:
    """Write the checkpoint's README.md, data card and birdview.json (card, measured sweep,
    no path of this machine)."""
    from safetensors.torch import load_file

    weights = run / "model.safetensors"
    params = sum(v.numel() for v in load_file(weights).values())
    facts = {
        "family": families.get(family).title,
        "params": params / 1e6,
        "size_mb": weights.stat().st_size / 2**20,
        **settings,
    }
    work = str(run.parent)
    (run / "README.md").write_text(card_text(facts, results), encoding="utf-8")
    card_json = portable_text(data_card.read_text(encoding="utf-8"), work)
    (run / "data_card.json").write_text(card_json, encoding="utf-8")
    record_path = run / "birdview.json"
    record = json.loads(record_path.read_text(encoding="utf-8"))
    record["metrics"]["sweep"] = results
    record = portable_record(record, work)
    record_path.write_text(json.dumps(record, indent=2), encoding="utf-8")
    write_card(run, demo_card(run / "data_card.json", results))


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
