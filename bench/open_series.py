"""Opening a CT series: BirdView against SimpleITK's ImageSeriesReader on the same files.

Prints, for each series, the median of several runs of
- time to first displayed slice: BirdView's scan + preview of the middle slice,
- time to full volume: BirdView's scan + load,
each as a ratio to SimpleITK reading the whole series (GDCM's file sorting + decode).
Targets: first slice <= 0.3x, full volume <= 1.2x.

Series: the real 20-slice JPEG 2000 CT in ../shared/data/totalseg, and a 512x512 x 240-slice
uncompressed CT written here from a real slice (bench/_data, not committed).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pydicom
import SimpleITK as sitk

from birdview.core.io import load, read_preview, scan

HERE = Path(__file__).resolve().parent
SHARED = HERE.parent.parent / "shared" / "data"
REAL_CT = SHARED / "totalseg" / "example_ct_dicom"
TEMPLATE = SHARED / "dicom_multiframe" / "CT1_UNC.explicit_little_endian.dcm"


def write_big_series(folder: Path, slices: int) -> Path:
    """A 512x512 CT series built from one real slice, shifted in z and lightly varied."""
    folder.mkdir(parents=True, exist_ok=True)
    if len(list(folder.glob("*.dcm"))) == slices:
        return folder
    template = pydicom.dcmread(TEMPLATE)
    pixels = template.pixel_array
    series_uid = pydicom.uid.generate_uid()
    rng = np.random.default_rng(0)
    for k in range(slices):
        ds = template.copy()
        ds.SeriesInstanceUID = series_uid
        ds.SOPInstanceUID = pydicom.uid.generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.InstanceNumber = k + 1
        ds.ImagePositionPatient = [-250.0, -250.0, -400.0 + 1.25 * k]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.SliceThickness = 1.25
        noise = rng.integers(-3, 4, size=pixels.shape).astype(pixels.dtype)
        ds.PixelData = (pixels + noise).tobytes()
        # Shuffled names: the reader must sort by geometry, not by name.
        ds.save_as(folder / f"{rng.integers(1 << 40):012x}.dcm", enforce_file_format=True)
    return folder


def time_sitk(folder: Path) -> float:
    started = time.perf_counter()
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
    image = reader.Execute()
    sitk.GetArrayViewFromImage(image).sum()
    return time.perf_counter() - started


def time_first_slice(folder: Path) -> float:
    started = time.perf_counter()
    entry = scan(folder).entries[0]
    preview = read_preview(entry)
    assert preview is not None and preview.shape[-1] == 512
    return time.perf_counter() - started


def time_full_volume(folder: Path) -> float:
    started = time.perf_counter()
    volume = load(scan(folder).entries[0])
    volume.voxels.sum()
    return time.perf_counter() - started


def compare(name: str, folder: Path, repeats: int) -> None:
    runs = {"sitk": [], "first": [], "full": []}
    for _ in range(repeats):  # interleaved, so drift in the machine hits all three alike
        runs["sitk"].append(time_sitk(folder))
        runs["first"].append(time_first_slice(folder))
        runs["full"].append(time_full_volume(folder))
    med = {key: statistics.median(values) for key, values in runs.items()}
    print(f"{name}:")
    print(f"  SimpleITK ImageSeriesReader  {med['sitk'] * 1000:8.1f} ms (baseline)")
    for key, label, target in (("first", "first slice", 0.3), ("full", "full volume", 1.2)):
        ratio = med[key] / med["sitk"]
        print(
            f"  BirdView {label:<20}{med[key] * 1000:8.1f} ms"
            f"  ratio {ratio:.2f} (target <= {target:.2f})"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slices", type=int, default=240)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    compare(f"real CT, 20 slices, JPEG 2000 ({REAL_CT.name})", REAL_CT, args.repeats)
    big = write_big_series(HERE / "_data" / f"ct_{args.slices}", args.slices)
    compare(f"CT {args.slices} x 512 x 512, uncompressed", big, args.repeats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
