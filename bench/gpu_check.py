"""What only a GPU can show: 4-bit loading on CUDA, VRAM and tokens/s, bf16 against nf4.

Run on a CUDA machine (never in CI): ``python bench/gpu_check.py [--size 1.3b|2.3b]``.
1. A tiny model of every family `birdview-train tiny` builds (Qwen-VL and Gemma 3 /
   MedGemma), on CUDA in nf4: loads, answers, reports its device, and counts the 4-bit layers
   inside the family's unquantised modules (vision tower, projector: must be 0).
2. A random-initialised model of the demo family at realistic size (built with the trainer's
   factory, since no weights can be downloaded), loaded through BirdView's loader in bf16 and
   in nf4: load time, peak VRAM, tokens/s for a 128-token greedy answer. Target: nf4 peak VRAM
   <= 0.35x bf16.
3. Segmentation: random SAM ViT-B (MedSAM's size) and SAM2.1 Hiera-T (MedSAM2's size) models,
   loaded through BirdView's segmentation loader in bf16 and fp32 on CUDA: load time, peak
   VRAM, ms for one 512 x 512 slice and per slice over a 20-slice propagation of the sample
   CT. Target: every mask on its slice's grid, bf16 peak VRAM below fp32's.
   ``--part sam`` runs this part alone.
4. VoxTell (text → 3D), only with ``--voxtell FOLDER``: a real ``voxtell_v1.1`` folder with
   its Qwen3-Embedding-4B text encoder (nothing can be downloaded), loaded through BirdView's
   segmentation loader on CUDA: load time, peak VRAM, seconds and sliding-window patches for
   one text prompt ("liver") on the sample CT at full resolution. ``--part voxtell`` runs
   this part alone; ``--part all`` adds it when the folder is given.
Prints one line per measurement and a JSON summary at the end.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from birdview.inference.offline import go_offline

go_offline()

import numpy as np  # noqa: E402
import torch  # noqa: E402

from birdview.core import families  # noqa: E402
from birdview.inference.engine import Engine  # noqa: E402
from birdview.inference.loader import load_checkpoint, quantised_module_names  # noqa: E402
from trainer.tiny import TinySpec, build_tiny  # noqa: E402

# Text and vision widths and depths like the released Qwen3-VL 2B/4B models; the vocabulary is
# the tiny one, so the totals are 1.3 B and 2.3 B parameters.
SIZES = {
    "1.3b": TinySpec(
        text_hidden=2048,
        text_layers=28,
        text_heads=16,
        text_kv_heads=8,
        vision_hidden=1024,
        vision_depth=24,
        vision_heads=16,
        min_pixels=256 * 28 * 28,
        max_pixels=1024 * 28 * 28,
    ),
    "2.3b": TinySpec(
        text_hidden=2560,
        text_layers=36,
        text_heads=32,
        text_kv_heads=8,
        vision_hidden=1024,
        vision_depth=24,
        vision_heads=16,
        min_pixels=256 * 28 * 28,
        max_pixels=1024 * 28 * 28,
    ),
}
IMAGE = np.random.default_rng(0).integers(0, 255, size=(512, 448, 3), dtype=np.uint8)


def measure(folder: Path, precision: str, tokens: int) -> dict:
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    loaded = load_checkpoint(folder, precision=precision, device="cuda")
    load_s = time.perf_counter() - started
    engine = Engine(loaded)
    engine.ask(IMAGE, "Where is the liver?", max_new_tokens=4)  # warm-up
    answer = engine.ask(IMAGE, "Where is the liver?", max_new_tokens=tokens)
    row = {
        "precision": precision,
        "device": str(loaded.device),
        "load_s": round(load_s, 2),
        "peak_vram_gib": round(torch.cuda.max_memory_allocated() / 1024**3, 3),
        "new_tokens": answer.n_new_tokens,
        "tokens_per_s": round(answer.n_new_tokens / max(answer.seconds, 1e-9), 1),
    }
    if precision in ("nf4", "int8"):
        kept = families.get(loaded.family).unquantised
        names = quantised_module_names(loaded.model)
        row["quantised_layers"] = len(names)
        row["quantised_in_unquantised_parts"] = sum(n.startswith(kept) for n in names)
    print(json.dumps(row))
    del engine, loaded
    torch.cuda.empty_cache()
    return row


def sam_rows(work: Path, device: str = "cuda", builder=None) -> list[dict]:
    """Part 3 (see the module docstring); ``builder`` (kind, folder) -> checkpoint folder,
    default the full-size random models of `tests.inference.tiny_sam`."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from birdview.core.geometry import Plane, to_canonical
    from birdview.core.io import load, scan
    from birdview.core.model_input import render_for_model, volume_intensity_range
    from birdview.core.resources import sample_ct_dir
    from birdview.inference.segmentation.loader import load_segmenter
    from birdview.inference.segmentation.propagate import propagate
    from tests.inference.tiny_sam import build_full_size_sam

    builder = builder or build_full_size_sam
    volume = to_canonical(load(scan(sample_ct_dir()).entries[0]))
    intensity = volume_intensity_range(volume)
    frames = [
        render_for_model(volume, Plane.AXIAL, k, intensity_range=intensity)
        for k in range(volume.shape[0])
    ]
    box = (150.0, 160.0, 330.0, 300.0)
    rows = []
    for kind in ("sam", "sam2_video"):
        folder = builder(kind, work / f"seg_{kind}")
        for precision in ("bf16", "fp32"):
            if device == "cuda":
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats()
            started = time.perf_counter()
            loaded = load_segmenter(folder, precision=precision, device=device)
            load_s = time.perf_counter() - started
            engine = loaded.engine
            engine.segment(frames[0], box)  # warm-up
            started = time.perf_counter()
            one = engine.segment(frames[10], box)
            segment_ms = 1000 * (time.perf_counter() - started)
            shapes = []
            started = time.perf_counter()
            method = propagate(
                engine,
                lambda k: frames[k],
                first=0,
                last=len(frames) - 1,
                start=10,
                box=box,
                mask=None,
                boxes=(),
                emit=lambda k, m, into=shapes: into.append(m.mask.shape),
                cancel=lambda: False,
            )
            per_slice_ms = 1000 * (time.perf_counter() - started) / len(frames)
            row = {
                "engine": kind,
                "method": method,
                "precision": loaded.precision,
                "device": loaded.device,
                "load_s": round(load_s, 2),
                "segment_ms": round(segment_ms, 1),
                "propagate_ms_per_slice": round(per_slice_ms, 1),
                "masks_on_grid": one.mask.shape == frames[0].shape[:2]
                and shapes == [frames[0].shape[:2]] * len(frames),
            }
            if device == "cuda":
                row["peak_vram_gib"] = round(torch.cuda.max_memory_allocated() / 1024**3, 3)
            print(json.dumps(row))
            rows.append(row)
            del engine, loaded
            if device == "cuda":
                torch.cuda.empty_cache()
    return rows


def sam_ok(rows: list[dict]) -> bool:
    grid = all(r["masks_on_grid"] for r in rows)
    by = {(r["engine"], r["precision"]): r.get("peak_vram_gib", 0) for r in rows}
    smaller = all(by[(e, "bf16")] < by[(e, "fp32")] for e, _ in by)
    return grid and smaller


def voxtell_row(folder: Path, device: str = "cuda", volume=None, text: str = "liver") -> dict:
    """Part 4 (see the module docstring) on ``volume`` (default: the sample CT, full
    resolution)."""
    from birdview.core.geometry import to_canonical
    from birdview.core.io import load, scan
    from birdview.core.resources import sample_ct_dir
    from birdview.inference.segmentation.loader import load_segmenter

    if volume is None:
        volume = to_canonical(load(scan(sample_ct_dir()).entries[0]))
    if device == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    loaded = load_segmenter(folder, precision="auto", device=device)
    load_s = time.perf_counter() - started
    patches: list[tuple[int, int]] = []
    started = time.perf_counter()
    mask = loaded.engine.segment_volume(
        volume, text, lambda: False, lambda done, total: patches.append((done, total))
    )
    row = {
        "engine": "voxtell",
        "precision": loaded.precision,
        "device": loaded.device,
        "volume": list(volume.shape),
        "load_s": round(load_s, 2),
        "prompt_s": round(time.perf_counter() - started, 2),
        "patches": patches[-1][1] if patches else 0,
        "mask_on_grid": mask is not None and mask.shape == volume.shape,
        "mask_voxels": int(mask.sum()) if mask is not None else 0,
    }
    if device == "cuda":
        row["peak_vram_gib"] = round(torch.cuda.max_memory_allocated() / 1024**3, 3)
    print(json.dumps(row))
    del loaded
    if device == "cuda":
        torch.cuda.empty_cache()
    return row


def voxtell_refusal(part: str, folder: str | None) -> str:
    """Why part 4 cannot run with ``folder`` ("" when it can, or when it is not asked for)."""
    if folder is None:
        return "--part voxtell needs --voxtell FOLDER (voxtell_v1.1)" if part == "voxtell" else ""
    from birdview.inference.errors import ModelLoadError
    from birdview.inference.segmentation.voxtell import ENCODER_NAME, check_folder

    try:
        found = check_folder(Path(folder))
    except ModelLoadError as exc:
        return str(exc)
    if found["encoder"] is None:
        return (
            f"The VoxTell check needs the text encoder: put {ENCODER_NAME} in "
            f"'{Path(folder) / 'text_encoder'}' or beside the folder"
        )
    return ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="2.3b")
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--part", choices=("all", "vlm", "sam", "voxtell"), default="all")
    parser.add_argument("--voxtell", metavar="FOLDER", help="a voxtell_v1.1 folder (part 4)")
    args = parser.parse_args(argv)
    refusal = voxtell_refusal(args.part, args.voxtell)
    if refusal:
        print(refusal)
        return 2
    if not torch.cuda.is_available():
        print("No CUDA device: this check only means something on a GPU.")
        return 2
    print(f"GPU: {torch.cuda.get_device_name(0)}, torch {torch.__version__}")
    summary: dict = {"gpu": torch.cuda.get_device_name(0)}
    if args.voxtell is not None and args.part in ("all", "voxtell"):
        summary["voxtell"] = voxtell_row(Path(args.voxtell))
        print(
            "voxtell: mask on the CT's grid:", "yes" if summary["voxtell"]["mask_on_grid"] else "NO"
        )
    if args.part == "voxtell":
        print(json.dumps(summary, indent=2))
        return 0 if summary["voxtell"]["mask_on_grid"] else 1
    sam_passed = True
    if args.part in ("all", "sam"):
        with tempfile.TemporaryDirectory() as work:
            summary["segmentation"] = sam_rows(Path(work))
        sam_passed = sam_ok(summary["segmentation"])
        print("segmentation: masks on grid, bf16 below fp32:", "yes" if sam_passed else "NO")
    if args.part == "sam":
        print(json.dumps(summary, indent=2))
        return 0 if sam_passed else 1
    with tempfile.TemporaryDirectory() as work:
        for key in families.tiny_families():
            tiny = build_tiny(key, Path(work) / key)
            summary[f"tiny_nf4_{key}"] = measure(tiny, "nf4", 16)
        started = time.perf_counter()
        demo = families.demo_family().key
        big = build_tiny(demo, Path(work) / args.size, spec=SIZES[args.size], dtype="bfloat16")
        summary["build_s"] = round(time.perf_counter() - started, 1)
        summary["bf16"] = measure(big, "bf16", args.tokens)
        summary["nf4"] = measure(big, "nf4", args.tokens)
    ratio = summary["nf4"]["peak_vram_gib"] / summary["bf16"]["peak_vram_gib"]
    summary["nf4_over_bf16_vram"] = round(ratio, 3)
    print(f"nf4 / bf16 peak VRAM: {ratio:.2f} (target <= 0.35)")
    print(json.dumps(summary, indent=2))
    towers_whole = all(
        row.get("quantised_in_unquantised_parts", 0) == 0
        for row in summary.values()
        if isinstance(row, dict)
    )
    voxtell_passed = summary.get("voxtell", {}).get("mask_on_grid", True)
    return 0 if ratio <= 0.35 and towers_whole and sam_passed and voxtell_passed else 1


if __name__ == "__main__":
    sys.exit(main())
