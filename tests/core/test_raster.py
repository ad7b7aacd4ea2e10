"""The picture reader on the BiomedParse and SAM-Med2D demo PNGs, and on JPEG/TIFF/BMP copies
of them written with Pillow."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageFile

from birdview.core.errors import LoadCancelled, VolumeReadError
from birdview.core.io.raster import RASTER_SUFFIXES, load_raster, scan_raster
from tests.conftest import SHARED_DATA, shared

DEMO = SHARED_DATA / "biomedparse_demo" / "demo"
SAMMED = SHARED_DATA / "sammed2d_demo" / "data_demo" / "images"
ALL_PNG = sorted([*DEMO.glob("*.png"), *SAMMED.glob("*.png")])
COLOUR = {
    "18_pathology_colon.png",
    "19_pathology_liver.png",
    "23_fundus_retinal.png",
    "24_endoscope_colon.png",
    "25_dermoscopy_skin.png",
}


def _read(path, **kwargs):
    return load_raster(scan_raster(str(path)), **kwargs)


def test_suffixes():
    assert RASTER_SUFFIXES == (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")


def test_the_demo_sets_are_here():
    assert len(ALL_PNG) == 32


@pytest.mark.parametrize("path", ALL_PNG, ids=lambda p: p.name)
def test_every_demo_png_loads(path):
    entry = scan_raster(str(path))
    assert entry.kind == "raster" and entry.n_slices == 1 and entry.description == path.name
    volume = load_raster(entry)
    assert not volume.has_geometry and volume.spacing_mm == (1.0, 1.0, 1.0)
    assert volume.voxels.dtype == np.uint8
    assert volume.metadata["series_description"] == path.name
    assert volume.modality == entry.modality == "OT"  # grey levels, whatever the name says
    with Image.open(path) as image:
        rgb = np.asarray(image.convert("RGB"))
    if path.name in COLOUR:
        assert volume.voxels.shape == (1, *rgb.shape)
        np.testing.assert_array_equal(volume.voxels[0], rgb)
    else:  # grey stored as RGB(A): one channel, unchanged
        assert volume.voxels.shape == (1, *rgb.shape[:2])
        np.testing.assert_array_equal(volume.voxels[0], rgb[..., 0])


def test_named_examples():
    xray = _read(DEMO / "15_X-Ray_chest.png")
    assert xray.voxels.shape == (1, 1024, 1024) and xray.modality == "OT"
    fundus = _read(DEMO / "23_fundus_retinal.png")
    assert fundus.voxels.shape == (1, 1024, 1024, 3) and fundus.is_rgb and fundus.modality == "OT"


@pytest.mark.parametrize("name", ["00_CT_lung.png", "06_CT_abdomen.png", "09_MRI-FLAIR_brain.png"])
def test_a_picture_is_not_ct_whatever_its_name(name):
    """A PNG holds grey levels, not Hounsfield units: no CT windows, no "HU" for it."""
    from birdview.core.display import default_window, presets_for

    entry = scan_raster(str(DEMO / name))
    volume = load_raster(entry)
    assert entry.modality == volume.modality == "OT"
    assert presets_for(volume.modality) == {}
    assert default_window(volume).width == 255  # shown as stored


# -- other formats, written from the real pictures ------------------------------------------


def test_jpeg_round_trip(tmp_path):
    with Image.open(DEMO / "23_fundus_retinal.png") as image:
        colour = image.convert("RGB")
    with Image.open(DEMO / "15_X-Ray_chest.png") as image:
        grey = image.convert("L")
    colour.save(tmp_path / "fundus.jpg", quality=95)
    grey.save(tmp_path / "chest_xray.jpeg", quality=95)
    photo = _read(tmp_path / "fundus.jpg")
    assert photo.voxels.shape == (1, 1024, 1024, 3)
    assert np.abs(photo.voxels[0].astype(int) - np.asarray(colour)).mean() < 3
    film = _read(tmp_path / "chest_xray.jpeg")
    assert film.voxels.shape == (1, 1024, 1024) and film.modality == "OT"
    assert np.abs(film.voxels[0].astype(int) - np.asarray(grey)).mean() < 3


def test_multipage_tiff_is_a_stack(tmp_path):
    pages = []
    for name in ("00_CT_lung.png", "01_CT_lung.png", "02_CT_lung.png"):
        with Image.open(DEMO / name) as image:
            pages.append(image.convert("L"))
    path = tmp_path / "ct_stack.tif"
    pages[0].save(path, save_all=True, append_images=pages[1:], compression="tiff_lzw")
    entry = scan_raster(str(path))
    assert entry.n_slices == 3
    calls = []
    volume = load_raster(entry, progress=lambda done, total: calls.append((done, total)))
    assert volume.voxels.shape == (3, 1024, 1024) and calls[-1] == (3, 3)
    for index, page in enumerate(pages):
        np.testing.assert_array_equal(volume.voxels[index], np.asarray(page))
    assert [s.frame for s in volume.sources] == [0, 1, 2]


def test_tiff_pages_of_different_sizes_show_the_first(tmp_path):
    with (
        Image.open(SAMMED / "s0619_32.png") as small,
        Image.open(SAMMED / "s0114_111.png") as other,
    ):
        first, second = small.convert("L"), other.convert("L")
    path = tmp_path / "mixed.tiff"
    first.save(path, save_all=True, append_images=[second])
    assert scan_raster(str(path)).n_slices == 1
    volume = _read(path)
    assert volume.voxels.shape == (1, 155, 225)
    assert volume.warnings == (
        "the file holds 2 pages of different sizes or kinds; showing the first",
    )


def test_sixteen_bit_grey_keeps_its_depth(tmp_path):
    with Image.open(SAMMED / "amos_0006_90.png") as image:
        values = np.asarray(image.convert("L")).astype(np.uint16) * 257
    path = tmp_path / "deep.png"
    Image.fromarray(values).save(path)
    volume = _read(path)
    assert volume.voxels.dtype == np.uint16
    np.testing.assert_array_equal(volume.voxels[0], values)
    assert volume.window is None  # not an 8-bit picture: windowed from percentiles


def test_palette_and_bmp(tmp_path):
    with Image.open(DEMO / "25_dermoscopy_skin.png") as image:
        colour = image.convert("RGB").resize((256, 256))
    colour.quantize(64).save(tmp_path / "palette.png")
    colour.save(tmp_path / "skin.bmp")
    palette = _read(tmp_path / "palette.png")
    assert palette.voxels.shape == (1, 256, 256, 3)
    bmp = _read(tmp_path / "skin.bmp")
    np.testing.assert_array_equal(bmp.voxels[0], np.asarray(colour))


# -- damaged files --------------------------------------------------------------------------


def _truncated_copy(tmp_path):
    data = (DEMO / "24_endoscope_colon.png").read_bytes()
    path = tmp_path / "cut_endoscope.png"
    path.write_bytes(data[: len(data) // 2])
    return path


def test_truncated_png_is_refused(tmp_path):
    path = _truncated_copy(tmp_path)
    with pytest.raises(
        VolumeReadError, match=r"Unable to read '.*cut_endoscope\.png' as the image is truncated"
    ):
        _read(path)


def test_truncated_png_is_refused_even_when_pillow_is_told_to_pad(tmp_path, monkeypatch):
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    with pytest.raises(VolumeReadError, match="truncated"):
        _read(_truncated_copy(tmp_path))


def test_decompression_bomb_is_refused(monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(VolumeReadError, match="too large to decode safely"):
        scan_raster(str(DEMO / "00_CT_lung.png"))


def test_other_failures(tmp_path):
    with pytest.raises(VolumeReadError, match="as the file does not exist"):
        scan_raster(str(tmp_path / "missing.png"))
    text = tmp_path / "notes.png"
    text.write_text("not a picture")
    with pytest.raises(VolumeReadError, match="as it is not an image Pillow can read"):
        scan_raster(str(text))


def test_cancel():
    entry = scan_raster(str(shared("sammed2d_demo", "data_demo", "images", "s0619_32.png")))
    with pytest.raises(LoadCancelled):
        load_raster(entry, cancel=lambda: True)
