"""VoxTell on the CPU: BirdView's worker against VoxTell's own predictor, same run.

Builds the tiny random VoxTell (`experiments.tiny_voxtell`) and times one text prompt
("liver") on the sample CT taken every 4th row and column (20 × 128 × 128, one
sliding-window patch of the tiny network, as the tests use it), twice each way, the faster
of each counted (the first run of a network warms oneDNN):

- direct: VoxTell's `VoxTellPredictor.predict_single_image` on the array as VoxTell takes it
  (`voxtell.to_voxtell`, made beforehand), in this process;
- worker: one `propagate` request with the text through BirdView's client and worker
  process: the volume sent, reoriented, segmented, each axial slice's mask streamed back,
  with a progress message per patch.

Both use one torch thread. Prints seconds for each and worker / direct: the adapter's
overhead (volume transfer, reorientation, packing and streaming the slices) as a ratio.
Target: <= 1.1x. Measured here (2 shared CPU cores, 1 thread): direct 4.70 s, worker
5.00 s, 1.06x, the same 280 694 voxels, one progress message. The network here is random;
only the shape of the work is VoxTell's.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from birdview.inference.offline import go_offline  # noqa: E402

go_offline()

import numpy as np  # noqa: E402

from birdview.core.geometry import to_canonical  # noqa: E402
from birdview.core.io import load, scan  # noqa: E402
from birdview.core.resources import sample_ct_dir  # noqa: E402
from birdview.core.volume import Volume  # noqa: E402
from birdview.inference.client import InferenceClient  # noqa: E402
from birdview.inference.protocol import WorkerConfig  # noqa: E402
from birdview.inference.segmentation.protocol import PropagateReply  # noqa: E402
from birdview.inference.segmentation.voxtell import ras_affine, to_voxtell  # noqa: E402
from experiments.tiny_voxtell import build_tiny_voxtell  # noqa: E402

TEXT = "liver"


def small_ct() -> Volume:
    ct = to_canonical(load(scan(sample_ct_dir()).entries[0]))
    sx, sy, sz = ct.spacing_mm
    voxels = np.ascontiguousarray(ct.voxels[:, ::4, ::4])
    return ct.with_changes(voxels=voxels, spacing_mm=(sx * 4, sy * 4, sz))


def direct_s(folder: Path, volume: Volume, repeats: int) -> tuple[float, int]:
    """VoxTell's predictor in this process: the fastest of ``repeats`` runs, mask voxels."""
    import torch
    from voxtell.inference.predictor import VoxTellPredictor

    torch.set_num_threads(1)
    predictor = VoxTellPredictor(
        model_dir=str(folder),
        device=torch.device("cpu"),
        text_encoding_model=str(folder / "text_encoder"),
        use_precomputed_embeddings=False,
    )
    image = to_voxtell(volume.voxels, ras_affine(volume)).astype(np.float32)[None]
    times, voxels = [], 0
    for _ in range(repeats):
        started = time.perf_counter()
        found = predictor.predict_single_image(image, [TEXT])
        times.append(time.perf_counter() - started)
        voxels = int(found[0].sum())
    return min(times), voxels


def worker_s(folder: Path, volume: Volume, repeats: int) -> tuple[float, int, int]:
    """One propagate request through the worker: the fastest of ``repeats`` runs, mask
    voxels, progress messages of the last run."""
    client = InferenceClient(timeout_s=300.0, load_timeout_s=300.0, start_timeout_s=60.0)
    client.start()
    try:
        config = WorkerConfig(str(folder), device="cpu", torch_threads=1)
        loaded = client.load_segmenter(config).result(300)
        assert not hasattr(loaded, "kind"), loaded  # a WorkerFailure has a kind
        times, voxels, steps = [], 0, []
        for _ in range(repeats):
            steps = []
            started = time.perf_counter()
            reply = client.propagate(
                volume,
                first=0,
                last=volume.shape[0] - 1,
                text=TEXT,
                on_progress=lambda done, total, into=steps: into.append(done),
            ).result(300)
            times.append(time.perf_counter() - started)
            assert isinstance(reply, PropagateReply) and not reply.cancelled, reply
            voxels = sum(int(s.mask.unpack().sum()) for s in reply.slices)
        return min(times), voxels, len(steps)
    finally:
        client.shutdown()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    volume = small_ct()
    with tempfile.TemporaryDirectory() as work:
        folder = build_tiny_voxtell(Path(work) / "voxtell_tiny", seed=0)
        direct, direct_voxels = direct_s(folder, volume, args.repeats)
        print(f"direct (VoxTell's predictor): {direct:.2f} s, {direct_voxels} voxels")
        worker, worker_voxels, steps = worker_s(folder, volume, args.repeats)
        print(
            f"worker (BirdView's propagate): {worker:.2f} s, {worker_voxels} voxels, "
            f"{steps} progress message(s)"
        )
    ratio = worker / direct
    # Two runs of one network differ in a voxel or so (oneDNN's sums are unordered).
    same = abs(worker_voxels - direct_voxels) <= max(10, direct_voxels // 1000)
    print(f"volume {volume.shape}: worker / direct = {ratio:.2f}x (target <= 1.1x)")
    print("same mask size both ways:", "yes" if same else "NO")
    return 0 if ratio <= 1.1 and same else 1


if __name__ == "__main__":
    sys.exit(main())
