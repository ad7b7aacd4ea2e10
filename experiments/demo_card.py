"""The demo model's card: its README.md, the description the app's model panel shows, and its
birdview.json without the paths of the machine that built it."""

from __future__ import annotations

import json
from typing import Any

# What the trainer records as paths of the build machine: the base model, the run folder and
# the training file. The shipped checkpoint keeps the training file's name only.
_MACHINE_PATHS = (("base",), ("recipe", "out"), ("recipe", "model", "base"))
_FILE_NAMES = (("recipe", "data", "train"), ("data", "train"))

CARD = """\
# BirdView demo model — a demo trained on the data it shows, not a medical model

A tiny {family}-family model ({params:.1f} M parameters, {size_mb:.1f} MB) trained from scratch
on a 2-core CPU by BirdView's own trainer (`python -m experiments.demo_model`, seed {seed},
{steps} steps of {batch} questions, lr {lr}, {minutes:.0f} min of wall clock). It exists so that
BirdView shows its refer-and-ground workflow on the bundled sample CT without a GPU and without
a download.

**It was trained on the very CT it is shown with, every slice of it, so what it answers there
is remembered, not read from the image as a real model would. It knows nothing about medicine,
is wrong on any other image, and must never be used for a clinical decision.**

## Training data
`birdview-train build-data` on the bundled TotalSegmentator sample CT
(resources/samples/totalseg_ct, Apache-2.0, see its ATTRIBUTION.md) and TotalSegmentator's
label map of it (model output, not manual ground truth): all 20 axial slices; for each slice and
each of {structures} structures the grounding question as the app asks it ("Where is the liver
located in the image?") and as a person types it ("where is the liver?"), answered with the
label map's boxes where the structure is on the slice and "There is no ... in this image."
where it is not; and the naming question for each box ({taught_items} questions in all, one
per conversation). Recipe `tiny-cpu` (fp32, packed), with the vision tower and mergers frozen
at their random start and the mergers' output centred on the mean image token of the 20 slices,
so that the slices stay apart (docs/LEARNING_PROOF.md, "The demo model"). Data card:
`data_card.json` next to this file.

## Measured on that CT, the way the app is used
A volume sweep per structure (`experiments/demo_sweep.py`: the app's question on every axial
slice, the real inference engine) against the label map. *Presence*: share of the 20 slices
where "a box" / "no box" agrees with the label map (a structure is on a slice when it has a part
of at least 16 pixels). *Median IoU*: over the slices that have it, the box around what the
model drew against the box around the structure's parts (0 where it drew nothing).

| structure | on slices | found on | presence | median IoU |
|---|---|---|---|---|
{rows}

Slices are numbered from 0 (Im 286 in the viewer) to 19 (Im 267). {absent}
"""


def _span(slices: list[int]) -> str:
    """[0, 1, 2, 3, 7] → "0–3, 7"."""
    runs: list[list[int]] = []
    for k in slices:
        if runs and k == runs[-1][-1] + 1:
            runs[-1].append(k)
        else:
            runs.append([k])
    return ", ".join(f"{r[0]}–{r[-1]}" if len(r) > 1 else str(r[0]) for r in runs) or "none"


def card_text(facts: dict[str, Any], results: dict[str, dict]) -> str:
    """The README.md of the demo checkpoint: what it is, what it saw, what it measured."""
    rows = []
    shown = {name: r for name, r in results.items() if r["present_on"]}
    for name, r in sorted(shown.items()):
        rows.append(
            f"| {name} | {_span(r['present_on'])} | {_span(r['found_on'])} "
            f"| {r['presence_accuracy']:.2f} | {r['median_iou']:.2f} |"
        )
    return CARD.format(
        rows="\n".join(rows), structures=len(results), absent=_absent(results), **facts
    )


def _absent(results: dict[str, dict]) -> str:
    """What the sweep drew for the structures the label map has on no slice."""
    absent = {name: r for name, r in results.items() if not r["present_on"]}
    if not absent:
        return ""
    drawn = sum(len(r["found_on"]) for r in absent.values())
    slices = sum(r["slices"] for r in absent.values())
    return (
        f"Not in this slab at all: {', '.join(absent)}; asked for them, the model drew a box "
        f"on {drawn} of {slices} slices."
    )


def description(results: dict[str, dict]) -> str:
    """The card's description, shown in the app's model panel."""
    shown = [r for r in results.values() if r["present_on"]]
    presence = _range([r["presence_accuracy"] for r in shown], "{:.0%}")
    ious = _range([r["median_iou"] for r in shown], "{:.2f}")
    return (
        "A demo trained on the data it shows, not a medical model: taught every axial slice of "
        "the bundled sample CT with TotalSegmentator's label map of it, so its answers there "
        "are remembered, and it is wrong on any other image. Swept over that CT, per "
        f"structure: present or absent as the label map says on {presence} of slices, median "
        f"IoU {ious} (README.md in the model folder)."
    )


def _range(values: list[float], form: str) -> str:
    low, high = form.format(min(values)), form.format(max(values))
    return low if low == high else f"{low}–{high}"


def portable_text(text: str, work: str) -> str:
    """``text`` with the work folder's path made relative to it ("nifti:source?...")."""
    return text.replace(work.rstrip("/") + "/", "").replace(work, ".")


def portable_record(record: dict[str, Any], work: str) -> dict[str, Any]:
    """``record`` (birdview.json) without the absolute paths of the machine that built it:
    base model and run folder dropped, training files by name, the build's commands relative
    to the work folder ``work``."""
    record = json.loads(portable_text(json.dumps(record), work))
    for keys in _MACHINE_PATHS:
        parent = _parent(record, keys)
        if parent is not None:
            parent.pop(keys[-1], None)
    for keys in _FILE_NAMES:
        parent = _parent(record, keys)
        if parent is not None and isinstance(parent.get(keys[-1]), str):
            parent[keys[-1]] = parent[keys[-1]].replace("\\", "/").rsplit("/", 1)[-1]
    return record


def _parent(record: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any] | None:
    node: Any = record
    for key in keys[:-1]:
        node = node.get(key) if isinstance(node, dict) else None
    return node if isinstance(node, dict) else None
