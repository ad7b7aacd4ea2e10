"""Box text of every model family: exact formats, round trips, and a parser that never raises."""

from __future__ import annotations

import math
import re
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from birdview.core import families
from birdview.core.box import Box
from birdview.core.box_codecs import GRID, MAX_BOXES, ParseResult
from birdview.core.geometry import Plane

CODECS = {family.key: family.codec for family in families.all_families()}
FAMILIES = sorted(CODECS)
IMAGE_SIZES = [(320, 290), (1024, 512), (512, 512), (258, 181)]
MODEL_SIZE = (448, 420)  # what a processor might resize 320×290 to: not the image size
AXIAL = {"plane": Plane.AXIAL, "slice_index": 0}


def _parse(family: str, text: str, size=(1000, 1000), model_size=(1000, 1000)) -> ParseResult:
    return CODECS[family].parse(
        text, size, plane=Plane.AXIAL, slice_index=0, model_size_px=model_size
    )


def _tolerance_px(family: str, image_size, model_size) -> tuple[float, float]:
    """Half a text unit rounds away; allow a whole one."""
    codec = CODECS[family]
    if not codec.relative:
        return image_size[0] / model_size[0], image_size[1] / model_size[1]
    if codec.pad_to_square:
        side = max(image_size)
        return side / GRID, side / GRID
    return image_size[0] / GRID, image_size[1] / GRID


# -- exact formats ---------------------------------------------------------------------------


def test_encode_writes_each_family_format():
    boxes = [Box(Plane.AXIAL, 0, 32, 29, 160, 145, label="liver")]
    size = (320, 290)
    assert CODECS["medgrit"].encode(boxes, size) == "<ref>liver</ref><box>(100,100),(500,500)</box>"
    assert CODECS["qwen2_vl"].encode(boxes, size) == (
        "<|object_ref_start|>liver<|object_ref_end|><|box_start|>(100,100),(500,500)<|box_end|>"
    )
    json_text = '```json\n[\n\t{"bbox_2d": [100, 100, 500, 500], "label": "liver"}\n]\n```'
    assert CODECS["qwen3_vl"].encode(boxes, size) == json_text
    assert CODECS["qwen3_5"].encode(boxes, size) == json_text
    assert CODECS["qwen2_5_vl"].encode(boxes, size, model_size_px=(640, 580)) == json_text.replace(
        "100, 100, 500, 500", "64, 58, 320, 290"
    )


def test_encode_region_never_writes_the_label():
    box = Box(Plane.AXIAL, 0, 32, 29, 160, 145, label="liver")
    size = (320, 290)
    assert CODECS["medgrit"].encode_region(box, size) == "<box>(100,100),(500,500)</box>"
    assert CODECS["qwen2_vl"].encode_region(box, size) == (
        "<|box_start|>(100,100),(500,500)<|box_end|>"
    )
    assert CODECS["qwen3_vl"].encode_region(box, size) == '{"bbox_2d": [100, 100, 500, 500]}'
    assert (
        CODECS["qwen2_5_vl"].encode_region(box, size, model_size_px=(640, 580))
        == '{"bbox_2d": [64, 58, 320, 290]}'
    )


def test_encode_groups_boxes_of_one_label_under_one_ref():
    boxes = [
        Box(Plane.AXIAL, 0, 0, 0, 10, 10, label="hip left"),
        Box(Plane.AXIAL, 0, 20, 20, 30, 30, label="hip left"),
        Box(Plane.AXIAL, 0, 40, 40, 50, 50, label="sacrum"),
    ]
    text = CODECS["medgrit"].encode(boxes, (100, 100))
    assert text == (
        "<ref>hip left</ref><box>(0,0),(100,100)</box><box>(200,200),(300,300)</box>"
        "<ref>sacrum</ref><box>(400,400),(500,500)</box>"
    )
    labels = [b.label for b in _parse("medgrit", text, (100, 100)).boxes]
    assert labels == ["hip left", "hip left", "sacrum"]


def test_encode_empty_lists():
    assert CODECS["medgrit"].encode([], (10, 10)) == ""
    assert CODECS["qwen3_vl"].encode([], (10, 10)) == "```json\n[]\n```"
    assert _parse("qwen3_vl", "```json\n[]\n```") == ParseResult([], [], "")


def test_medgrit_text_is_what_birds_evaluation_reads():
    """BiRD's scripts delete parentheses and split on commas: four numbers must come out."""
    box = Box(Plane.AXIAL, 0, 12.3, 45.6, 78.9, 99.9)
    text = CODECS["medgrit"].encode([box], (100, 100))
    inner = re.findall(r"<box>(.*?)</box>", text)
    assert [len(s.replace("(", "").replace(")", "").split(",")) for s in inner] == [4]


def test_a_box_thinner_than_a_grid_unit_survives():
    box = Box(Plane.AXIAL, 0, 999.7, 10, 999.9, 10.2)
    for family in FAMILIES:
        text = CODECS[family].encode([box], (1000, 1000), model_size_px=(1000, 1000))
        (again,) = _parse(family, text).boxes
        assert again.width_px > 0 and again.x2_px <= 1000


def test_missing_model_size_raises_for_qwen2_5_vl_only():
    box = Box(Plane.AXIAL, 0, 1, 1, 2, 2)
    codec = CODECS["qwen2_5_vl"]
    with pytest.raises(ValueError, match="model_size_px is missing"):
        codec.encode([box], (10, 10))
    with pytest.raises(ValueError, match="model_size_px is missing"):
        codec.encode_region(box, (10, 10))
    with pytest.raises(ValueError, match="model_size_px is missing"):
        codec.parse("[]", (10, 10), plane=Plane.AXIAL, slice_index=0)
    for family in ("medgrit", "qwen2_vl", "qwen3_vl", "qwen3_5"):
        assert CODECS[family].encode_region(box, (10, 10))


@pytest.mark.parametrize("size", [(0, 10), (10, -1), (float("nan"), 5), None, (1, 2, 3)])
def test_bad_image_sizes_raise(size):
    with pytest.raises(ValueError, match="Unable to use image_size_px"):
        CODECS["medgrit"].parse("", size, plane=Plane.AXIAL, slice_index=0)


# -- round trips -----------------------------------------------------------------------------


@st.composite
def _boxes_in(draw, size):
    width, height = size
    min_w, min_h = 2 * width / GRID + 1, 2 * height / GRID + 1  # wider than the bump
    x1 = draw(st.floats(0, width - min_w))
    y1 = draw(st.floats(0, height - min_h))
    x2 = draw(st.floats(x1 + min_w, width))
    y2 = draw(st.floats(y1 + min_h, height))
    label = draw(st.from_regex(r"[a-z][a-z0-9 ]{0,20}[a-z]", fullmatch=True))
    return Box(Plane.SAGITTAL, 7, x1, y1, x2, y2, label=" ".join(label.split()))


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("size", IMAGE_SIZES)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_round_trip_within_one_unit(family, size, data):
    boxes = data.draw(st.lists(_boxes_in(size), min_size=1, max_size=4))
    model_size = MODEL_SIZE if family == "qwen2_5_vl" else None
    codec = CODECS[family]
    text = codec.encode(boxes, size, model_size_px=model_size)
    result = codec.parse(text, size, plane=Plane.SAGITTAL, slice_index=7, model_size_px=model_size)
    assert result.dropped == []
    assert len(result.boxes) == len(boxes)
    tol_x, tol_y = _tolerance_px(family, size, model_size)
    for box, again in zip(boxes, result.boxes, strict=True):
        assert (again.plane, again.slice_index, again.label) == (box.plane, 7, box.label)
        assert abs(again.x1_px - box.x1_px) <= tol_x and abs(again.x2_px - box.x2_px) <= tol_x
        assert abs(again.y1_px - box.y1_px) <= tol_y and abs(again.y2_px - box.y2_px) <= tol_y


@pytest.mark.parametrize("family", ["qwen2_5_vl", "qwen3_vl"])
def test_json_labels_with_quotes_and_unicode_round_trip(family):
    box = Box(Plane.AXIAL, 0, 1, 1, 5, 5, label='lésion "A" \\ 肝')
    text = CODECS[family].encode([box], (10, 10), model_size_px=(20, 20))
    assert _parse(family, text, (10, 10), (20, 20)).boxes[0].label == box.label


def test_quantisation_convention():
    """round(x / W * 1000) on the way out, v / 1000 * W on the way back."""
    box = Box(Plane.AXIAL, 0, 100.4, 0, 200, 10)
    text = CODECS["medgrit"].encode_region(box, (300, 300))
    assert text == f"<box>({round(100.4 / 300 * 1000)},0),({round(200 / 300 * 1000)},33)</box>"
    assert _parse("medgrit", text, (300, 300)).boxes[0].x1_px == pytest.approx(335 / 1000 * 300)


# -- pinned parsing cases --------------------------------------------------------------------


def test_medgrit_answer():
    text = "The hip left is located at <ref>hip left</ref><box>(120,340),(560,780)</box>."
    result = _parse("medgrit", text, (200, 100))
    (box,) = result.boxes
    assert box.edges_px == pytest.approx((24, 34, 112, 78))
    assert (box.label, box.flags) == ("hip left", ())
    assert result.text_without_boxes == "The hip left is located at hip left."


def test_truncated_json_keeps_the_complete_boxes_before_the_cut():
    text = (
        '```json\n[\n\t{"bbox_2d": [10, 20, 300, 400], "label": "liver"},\n'
        '\t{"bbox_2d": [500, 500, 600, 600], "label": "spleen"},\n\t{"bbox_2d": [700, 7'
    )
    result = _parse("qwen3_vl", text)
    assert [(b.label, b.edges_px) for b in result.boxes] == [
        ("liver", (10, 20, 300, 400)),
        ("spleen", (500, 500, 600, 600)),
    ]
    assert len(result.dropped) == 1 and "cut off" in result.dropped[0]
    assert result.text_without_boxes == ""


def test_swapped_corners_are_reordered_and_flagged():
    (box,) = _parse("medgrit", "<box>(600,700),(100,200)</box>").boxes
    assert box.edges_px == (100, 200, 600, 700)
    assert box.flags == ("swapped",)


def test_out_of_range_is_clamped_and_flagged():
    result = _parse(
        "qwen3_vl", '[{"bbox_2d": [-50, 10, 1200, 990.5], "label": "lung"}]', (500, 400)
    )
    (box,) = result.boxes
    assert box.edges_px == pytest.approx((0, 4, 500, 396.2))
    assert box.flags == ("clamped",)
    assert "outside the image" in _parse("medgrit", "<box>(1100,0),(1200,50)</box>").dropped[0]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('{"bbox_2d": [1, 2, 3]}', "expected 4 coordinates, found 3"),
        ('{"bbox_2d": [1, 2, 3, 4, 5]}', "expected 4 coordinates, found 5"),
        ('{"bbox_2d": [NaN, 2, 3, 4]}', "not a finite number"),
        ('{"bbox_2d": [1, 2, Infinity, 4]}', "not a finite number"),
        ('{"bbox_2d": [1, 2, 1e999, 4]}', "not a finite number"),
        ('{"bbox_2d": [1, 2, "x", 4]}', "not a number"),
        ('{"bbox_2d": [5, 2, 5, 4]}', "zero area"),
        ('{"bbox_2d": "1 2 3 4"}', "complete [x1, y1, x2, y2] list"),
        ("<box>(1,2),(3,</box>", "expected 4 coordinates, found 3"),
        ("<box>(1,2),(3,4", "cut off or malformed"),
        ("<box>liver</box>", "holds text"),
        ("<box></box>", "no coordinates"),
        ("<box>(1,1),(1,5)</box>", "zero area"),
    ],
)
def test_unreadable_boxes_are_dropped_with_a_reason(text, reason):
    result = _parse("qwen3_vl", text)
    assert result.boxes == []
    assert len(result.dropped) == 1
    assert reason in result.dropped[0] and text[:10] in result.dropped[0]


def test_json_tolerance_single_quotes_fences_and_prose():
    text = (
        "Sure! Here is what I found:\n```json\n[\n  {'bbox_2d': [100, 200, 300, 400], "
        '\'label\': \'left kidney\'},\n  {"label": "right kidney", "bbox_2d": ["500", 200, '
        "700, 400]}\n]\n```\nBoth kidneys look normal."
    )
    result = _parse("qwen3_5", text)
    assert [b.label for b in result.boxes] == ["left kidney", "right kidney"]
    assert result.boxes[1].edges_px == (500, 200, 700, 400)
    assert result.text_without_boxes == "Sure! Here is what I found:\n\nBoth kidneys look normal."


def test_every_format_is_read_on_the_familys_scale():
    """Models drift into other families' markup; the numbers keep the codec's scale."""
    text = "<ref>aorta</ref><box>(100,100),(200,200)</box>"
    (grid,) = _parse("qwen3_vl", text, (500, 500)).boxes
    assert grid.edges_px == (50, 50, 100, 100) and grid.label == "aorta"
    (pixels,) = _parse("qwen2_5_vl", text, (500, 500), (250, 250)).boxes
    assert pixels.edges_px == (200, 200, 400, 400)
    qwen2 = "<|object_ref_start|>aorta<|object_ref_end|><|box_start|>(1,2),(3,4)<|box_end|>"
    assert _parse("medgrit", qwen2).boxes[0].label == "aorta"
    assert _parse("qwen2_vl", '[{"bbox_2d": [1, 2, 3, 4], "label": "x"}]').boxes[0].label == "x"


def test_labels_come_from_the_last_ref_before_the_box():
    text = (
        "<box>(1,1),(2,2)</box> then <ref>liver</ref><box>(3,3),(4,4)</box>"
        '<box>(5,5),(6,6)</box> {"bbox_2d": [7, 7, 8, 8]} {"bbox_2d": [9,9,10,10], "label": "cyst"}'
        "<ref>spleen<box>(11,11),(12,12)</box>"
    )
    labels = [b.label for b in _parse("medgrit", text).boxes]
    assert labels == ["", "liver", "liver", "liver", "cyst", "spleen"]


def test_bare_coordinate_pairs_only_when_there_is_no_markup():
    (box,) = _parse("medgrit", "It is at (100,200),(300,400).").boxes
    assert box.edges_px == (100, 200, 300, 400)
    mixed = _parse("medgrit", "(1,2),(3,4) and <box>(5,6),(7,8)</box>")
    assert [b.edges_px for b in mixed.boxes] == [(5, 6, 7, 8)]
    # Qwen2-VL decoded with skip_special_tokens drops its tags, leaving bare pairs
    (bare,) = _parse("qwen2_vl", "<ref>liver</ref> at (10,20),(30,40).").boxes
    assert (bare.label, bare.edges_px) == ("liver", (10, 20, 30, 40))


def test_text_without_boxes_removes_markup():
    text = "A <box>(1,2),(3,4)</box> and <|box_start|>(5,6),(7,8)<|box_end|> , ok</box>"
    assert _parse("medgrit", text).text_without_boxes == "A and, ok"
    assert _parse("qwen2_vl", "No boxes here: x < y > z.").text_without_boxes == (
        "No boxes here: x < y > z."
    )


def test_floats_and_signs_are_read():
    (box,) = _parse("medgrit", "<box>(+10.5,2e1),(30.25,.5e2)</box>").boxes
    assert box.edges_px == (10.5, 20, 30.25, 50)


def test_boxes_are_capped_and_non_text_does_not_raise():
    result = _parse("medgrit", "<box>(1,1),(2,2)</box>" * (MAX_BOXES + 50))
    assert len(result.boxes) == MAX_BOXES
    assert any(f"more than {MAX_BOXES} boxes" in reason for reason in result.dropped)
    nothing = _parse("medgrit", None)  # type: ignore[arg-type]
    assert nothing.boxes == [] and "not text" in nothing.dropped[0]


# -- never raises, only sane boxes, fast -----------------------------------------------------

_NUMBERS = st.one_of(
    st.integers(-(10**6), 10**6).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["nan", "NaN", "inf", "-Infinity", "1e999", "9" * 400, "", "1.2.3", "--5"]),
)
_FRAGMENTS = st.one_of(
    st.builds("<ref>{}</ref>".format, st.text(max_size=10)),
    st.builds("<box>({},{}),({},{})</box>".format, *[_NUMBERS] * 4),
    st.builds("<|object_ref_start|>{}<|object_ref_end|>".format, st.text(max_size=10)),
    st.builds("<|box_start|>({},{}),({},{})<|box_end|>".format, *[_NUMBERS] * 4),
    st.builds('{{"bbox_2d": [{}, {}, {}, {}], "label": "{}"}}'.format, *[_NUMBERS] * 4, st.text()),
    st.builds("{{'bbox_2d': [{}]}}".format, st.lists(_NUMBERS, max_size=6).map(", ".join)),
    st.builds("({},{}),({},{})".format, *[_NUMBERS] * 4),
    st.sampled_from(["```json\n[", "]\n```", "<box>", "</box>", "<ref>", "{", "}", "[", "]", ","]),
    st.text(max_size=20),
)


@st.composite
def _adversarial(draw):
    text = "".join(draw(st.lists(_FRAGMENTS, max_size=12)))
    for _ in range(draw(st.integers(0, 3))):
        cut = draw(st.integers(0, len(text)))
        action = draw(st.sampled_from(["truncate", "insert", "delete", "nest"]))
        if action == "truncate":
            text = text[:cut]
        elif action == "insert":
            text = text[:cut] + draw(st.one_of(st.text(max_size=8), _FRAGMENTS)) + text[cut:]
        elif action == "delete":
            text = text[:cut] + text[cut + draw(st.integers(0, 5)) :]
        else:
            text = text[:cut] + draw(_FRAGMENTS) + text[cut:]
    return text


def _check_sane(result: ParseResult, size) -> None:
    assert isinstance(result.text_without_boxes, str)
    assert all(isinstance(reason, str) for reason in result.dropped)
    assert len(result.boxes) <= MAX_BOXES
    for box in result.boxes:
        assert isinstance(box, Box) and box.plane is Plane.AXIAL and box.slice_index == 0
        assert all(math.isfinite(v) for v in box.edges_px)
        assert 0 <= box.x1_px < box.x2_px <= size[0]
        assert 0 <= box.y1_px < box.y2_px <= size[1]
        assert set(box.flags) <= {"swapped", "clamped"}


@pytest.mark.parametrize("family", FAMILIES)
@settings(max_examples=150, deadline=None)
@given(
    text=st.one_of(
        st.text(),
        st.binary().map(lambda b: b.decode("utf-8", errors="replace")),
        _adversarial(),
    )
)
def test_parse_never_raises_and_returns_sane_boxes(family, text):
    size = (320, 290)
    result = CODECS[family].parse(text, size, **AXIAL, model_size_px=MODEL_SIZE)
    _check_sane(result, size)


_HUGE = {
    "junk": "\x00\ufffd<{[(" * 800_000,
    "boxes": "<ref>a</ref><box>(1,2),(300,400)</box>" * 140_000,
    "json": '{"bbox_2d": [1, 2, 300, 400], "label": "a"},' * 120_000,
    "open tags": "<box>(" * 900_000,
    "digits": "9" * 5_000_000,
    "blanks": " " * 5_000_000,
    "braces": "{" + '"bbox_2d": ' * 500_000,
}


@pytest.mark.parametrize("kind", sorted(_HUGE))
def test_parse_of_5_mb_is_fast(kind):
    text = _HUGE[kind]
    assert len(text) >= 4_500_000
    for family in ("medgrit", "qwen2_5_vl"):
        start = time.perf_counter()
        result = CODECS[family].parse(text, (320, 290), **AXIAL, model_size_px=MODEL_SIZE)
        assert time.perf_counter() - start < 1.0
        _check_sane(result, (320, 290))
