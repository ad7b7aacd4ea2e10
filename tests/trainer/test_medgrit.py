"""Med-GRIT files: streaming reads, atomic writes, and validation against real images."""

from __future__ import annotations

import json
import re
import shutil

import pytest

import trainer._json_stream as json_stream
from tests.conftest import shared
from trainer.cli import main
from trainer.medgrit import (
    MODALITIES,
    box_strings,
    card_extra_modalities,
    find_image,
    image_of,
    iter_items,
    modality_of,
    question_text,
    read_items,
    task_of,
    validate,
    write_items,
)

# SA-Med2D demo slices, copied under Med-GRIT-style names (modality first).
NAMES = {
    "s0114_111.png": "ct_00--TotalSeg--s0114--z_0111.png",
    "amos_0507_31.png": "mr_00--AMOS--amos_0507--z_0031.png",
    "s0619_32.png": "x_ray--Demo--s0619--x_0032.png",
}


@pytest.fixture
def images(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    source = shared("sammed2d_demo", "data_demo", "images")
    for original, name in NAMES.items():
        shutil.copy(source / original, folder / name)
    shutil.copy(source / "amos_0006_90.png", folder / "amos_0006_90.png")  # unknown modality
    return folder


def item(image: str, question: str, answer: str, *, item_id: str | None = None) -> dict:
    stem = image.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    return {
        "id": stem if item_id is None else item_id,
        "conversations": [[f"Picture 1: <img>{image}</img>\n{question}", answer]],
    }


CT, MR, XR = NAMES.values()
GOOD = [
    item(
        CT,
        "Where is the aorta located in the image?",
        "The aorta is located at <ref>aorta</ref><box>(480,320),(560,420)</box>.",
    ),
    item(
        MR, "What anatomical structure is present at the <box>(100,200),(300,400)</box>?", "Liver"
    ),
    item(
        f"/home/authors/SA-Med2D/images/{XR}",  # the authors' absolute path: found by name
        "Can you describe the content within the <box>(10,20),(990,1000)</box>?",
        "This region contains the left hip.",
    ),
    {
        "id": "ct_multi",
        "conversations": [
            [
                f"Picture 1: <img>{CT}</img>\nWhat can you interpret from the overall image?",
                "A CT.",
            ],
            ["Where is the heart?", "<ref>heart</ref><box>(400,300),(600,500)</box>"],
        ],
    },
]


# -- names ----------------------------------------------------------------------------------


def test_names_follow_the_evaluation():
    assert MODALITIES == ("ct", "mr", "x", "pet", "endoscopy", "dermoscopy", "fundus", "ultrasound")
    assert modality_of("ct_00--AbdomenCT1K--Case_00220--x_0359.png") == "ct"
    assert modality_of("/data/x_ray--ChestXray--p1--x_0001.png") == "x"
    assert (
        modality_of("fundus_00--a.png") == "fundus" and modality_of("noscore.png") == "noscore.png"
    )
    assert image_of(GOOD[2]) == f"/home/authors/SA-Med2D/images/{XR}"
    assert (
        question_text(GOOD[0]["conversations"][0][0]) == "Where is the aorta located in the image?"
    )
    assert box_strings(GOOD[0]["conversations"][0][1]) == ["(480,320),(560,420)"]
    with pytest.raises(ValueError, match="has no <img>"):
        image_of({"id": "a", "conversations": [["no image", "x"]]})


def test_task_is_read_from_the_question_wording():
    assert [task_of(i["conversations"][0][0]) for i in GOOD] == ["VG", "RO", "GC", "MII"]
    assert task_of("Good morning") is None


def test_images_are_found_by_relative_path_or_by_name(images):
    assert find_image(CT, images) == images / CT
    assert find_image(f"/elsewhere/{CT}", images) == images / CT
    assert find_image("nothing.png", images) is None
    (images / "sub").mkdir()
    shutil.copy(images / CT, images / "sub" / "inner.png")
    assert find_image("sub/inner.png", images) == images / "sub" / "inner.png"


def test_image_paths_never_lead_out_of_the_folder(tmp_path, images):
    outside = tmp_path / "secret.png"
    shutil.copy(images / CT, outside)
    (images / "sub").mkdir()

    assert find_image("../secret.png", images) is None  # exists, but outside
    assert find_image("sub/../../secret.png", images) is None
    assert find_image(str(outside), images) is None  # absolute: by name only, not there
    assert find_image(f"sub/../{CT}", images) == images / CT  # stays inside
    shutil.copy(images / CT, images / "secret.png")
    assert find_image(str(outside), images) == images / "secret.png"  # the name, inside
    assert find_image("../secret.png", images) is None  # never by name when it climbs out


# -- reading and writing --------------------------------------------------------------------


def test_items_stream_back_exactly_across_chunk_boundaries(tmp_path, monkeypatch):
    monkeypatch.setattr(json_stream, "_CHUNK_CHARS", 7)  # every value straddles chunks
    items = [*GOOD, 12345, "x" * 50, [1.5, None, True], {"ü": "日本"}]
    path = write_items(tmp_path / "sub" / "data.json", items)

    assert read_items(path) == items
    assert json.loads(path.read_text(encoding="utf-8")) == items
    stream = iter_items(path)
    assert next(stream) == GOOD[0]  # lazily, one at a time


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"id": 1}', "not a JSON list"),
        ("[1, 2", "item 1 is not followed by ','"),
        ("[1, }", "item 1 is not valid JSON"),
        ("[1] [2]", "text follows the closing"),
    ],
)
def test_broken_json_is_refused_with_where(tmp_path, text, message):
    path = tmp_path / "bad.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        read_items(path)


def hostile(tmp_path, name: str, content: str | bytes):
    """A real broken file."""
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


DEEP = 100_000  # far past Python's recursion limit


@pytest.mark.parametrize(
    ("content", "exception", "message"),
    [
        ("[" * DEEP + "]" * DEEP, ValueError, "item 0 nests lists or objects more than 64 deep"),
        ('[{"id": "a"}, {"c": ' + "[" * DEEP + "]" * DEEP + "}]", ValueError, "item 1 nests"),
        ("[" + "[" * 70 + "]" * 70 + "]", ValueError, "item 0 nests"),  # parses, too deep
        ('[{"id": "café"}]'.encode("latin-1"), ValueError, "not UTF-8 text .byte 0xe9"),
        ("", ValueError, "it is empty, not a JSON list"),
    ],
)
def test_hostile_json_is_refused_naming_the_file(tmp_path, content, exception, message):
    path = hostile(tmp_path, "hostile.json", content)
    with pytest.raises(exception, match=f"Unable to read '{re.escape(str(path))}' as .*{message}"):
        read_items(path)


def test_a_folder_where_the_file_should_be_is_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match=f"'{re.escape(str(tmp_path))}' as it is a folder"):
        read_items(tmp_path)
    with pytest.raises(FileNotFoundError, match="as it does not exist"):
        read_items(tmp_path / "none.json")


def test_an_endless_item_is_cut_off(tmp_path, monkeypatch):
    monkeypatch.setattr(json_stream, "MAX_ITEM_CHARS", 100)
    monkeypatch.setattr(json_stream, "_CHUNK_CHARS", 16)
    path = hostile(tmp_path, "endless.json", '[1, "' + "a" * 10_000)
    with pytest.raises(ValueError, match="item 1 is not valid JSON within 100 characters"):
        read_items(path)


def test_small_json_files_are_read_or_refused_naming_the_file(tmp_path):
    assert json_stream.read_json(hostile(tmp_path, "ok.json", '{"a": [1]}')) == {"a": [1]}
    for name, content, message in [
        ("deep.json", "[" * DEEP + "]" * DEEP, "nests lists or objects"),
        ("latin.json", '{"a": "é"}'.encode("latin-1"), "not UTF-8 text"),
        ("bad.json", "{nope", "not JSON .character 1"),
    ]:
        path = re.escape(str(hostile(tmp_path, name, content)))
        with pytest.raises(ValueError, match=f"Unable to read '{path}' .*{message}"):
            json_stream.read_json(tmp_path / name)


def test_empty_list_and_whitespace(tmp_path):
    path = tmp_path / "empty.json"
    path.write_text("  \n[\n ]\n", encoding="utf-8")
    assert read_items(path) == []


def test_writing_is_atomic(tmp_path):
    path = write_items(tmp_path / "data.json", GOOD)
    before = path.read_bytes()

    def failing():
        yield GOOD[0]
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        write_items(path, failing())
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["data.json"]  # no temporary file left


# -- validation -----------------------------------------------------------------------------


def broken_file(tmp_path):
    items = [
        GOOD[0],  # 0
        item("ct_00--Missing--case--z_0001.png", "Where is the liver?", "<box>(1,2),(3,4)</box>"),
        item(CT, "Where is the liver?", "At <box>(10,20),(30)</box>."),  # 2: malformed box
        item(CT, "Where is the spleen?", "   "),  # 3: empty answer
        item("amos_0006_90.png", "Where is the liver?", "<box>(1,2),(3,4)</box>"),  # 4
        GOOD[1],  # 5
        {"id": "no_conversations"},  # 6
        item(CT, "What is at the <box>(10,20),(1200,40)</box>?", "Rib"),  # 7: beyond the grid
        item(CT, "Where is the kidney?", "<box>(50,50),(20,90)</box>"),  # 8: x1 > x2
        item(CT, "Where?", "<box>(1,2),(3,4)"),  # 9: unclosed
        ["not", "an", "object"],  # 10
        {"id": "no_image", "conversations": [["Where is the liver?", "here"]]},  # 11
        {"id": "", "conversations": [[f"<img>{CT}</img> Where?", "x"], "oops"]},  # 12
    ]
    path = tmp_path / "broken.json"
    write_items(path, items)
    return path


def test_validation_reports_every_problem_with_its_item(tmp_path, images):
    report = validate(broken_file(tmp_path), images)

    found = {(p.index, p.item_id): p.reason for p in report.problems}
    reasons = [(p.index, p.reason) for p in report.problems]
    assert report.items == 13 and not report.ok
    assert {i for i, _ in reasons} == {1, 2, 3, 4, 6, 7, 8, 9, 10, 11, 12}
    assert (
        "image 'ct_00--Missing--case--z_0001.png' not found"
        in found[(1, "ct_00--Missing--case--z_0001")]
    )
    assert "malformed box in the answer of turn 0: '(10,20),(30)'" in found[(2, CT[:-4])]
    assert found[(3, CT[:-4])] == "empty answer in turn 0"
    assert found[(4, "amos_0006_90")].startswith("unknown modality 'amos'")
    assert "'conversations' is not a non-empty list" in found[(6, "no_conversations")]
    assert "beyond the 0–1000 grid" in found[(7, CT[:-4])]
    assert "x1 < x2" in found[(8, CT[:-4])]
    assert "1 <box> but 0 </box>" in found[(9, CT[:-4])]
    assert "the item is a list" in found[(10, "")]
    assert "no <img>" in found[(11, "no_image")]
    assert [r for i, r in reasons if i == 12] == [
        "bad structure: 'id' is '', not a non-empty string",
        "bad structure: turn 1 is not [question, answer] strings",
    ]
    assert not any(i in (0, 5) for i, _ in reasons)


def test_validation_counts_items_turns_tasks_modalities_and_boxes(tmp_path, images):
    path = write_items(tmp_path / "good.json", GOOD)

    report = validate(path, images)

    assert report.ok, report.problems
    assert (report.items, report.turns, report.boxes) == (4, 5, 4)
    assert report.tasks == {"VG": 2, "RO": 1, "GC": 1, "MII": 1}
    assert report.modalities == {"ct": 2, "mr": 1, "x": 1}
    assert "4 items, 5 turns, 4 boxes" in report.summary()
    assert validate(GOOD, images).summary() == report.summary()  # a list works too


def test_validation_stops_with_one_problem_where_the_json_breaks(tmp_path, images):
    path = tmp_path / "cut.json"
    text = json.dumps(GOOD)
    path.write_text(text[: text.index('"ct_multi"') + 20], encoding="utf-8")

    report = validate(path, images)

    assert report.items == 3
    assert [(p.index, p.reason.split(":")[0]) for p in report.problems] == [(3, "bad structure")]


def test_validation_refuses_paths_out_of_the_folder_without_opening_them(tmp_path, images):
    (tmp_path / "passwd").write_text("root:x:0:0")  # what "../passwd" would reach
    items = [GOOD[0], item("../passwd", "Where is the liver?", "<box>(1,2),(3,4)</box>")]

    report = validate(items, images, extra_modalities=["passwd"])

    assert [str(p) for p in report.problems] == [
        f"item 1 ('passwd'): image '../passwd' points outside '{images}' (not opened)"
    ]


def test_validation_finds_no_items_a_problem(tmp_path, images):
    path = hostile(tmp_path, "test_vg.json", "[]")
    report = validate(path, images)
    assert not report.ok and report.items == 0
    assert [str(p) for p in report.problems] == [f"no items: '{path}' is an empty list"]
    assert not validate([], images).ok


def test_validation_keeps_hostile_values_short(images):
    huge = {"id": "x" * 1_000_000, "conversations": [[f"<img>{CT}</img> Where?", "<box>"]]}
    nested = {"id": [[[[["deep"]]]]], "conversations": [[f"<img>{CT}</img> Where?", "x"]]}
    digits = item(CT, "Where?", f"<box>({'9' * 5000},1),(2,2)</box>")  # int() refuses these

    report = validate([huge, nested, digits], images)

    assert {p.index for p in report.problems} == {0, 1, 2}
    assert all(len(str(p)) < 800 for p in report.problems)
    assert "is not (x1,y1),(x2,y2) with integer coordinates" in str(report.problems[-1])


def test_validate_command_exit_codes(tmp_path, images, capsys):
    good = write_items(tmp_path / "good.json", GOOD)
    assert main(["validate", str(good), "--images", str(images)]) == 0
    assert "problems: 0" in capsys.readouterr().out

    assert main(["validate", str(broken_file(tmp_path)), "--images", str(images)]) == 1
    out = capsys.readouterr().out
    assert "problems: 12" in out
    assert "item 3 ('ct_00--TotalSeg--s0114--z_0111'): empty answer in turn 0" in out
    assert main(["validate", str(good), "--images", str(images / "nowhere")]) == 2
    assert main(["validate", str(tmp_path / "none.json"), "--images", str(images)]) == 2


# -- modalities outside Med-GRIT's 8 -------------------------------------------------------

OTHER = item("amos_0006_90.png", "Where is the liver?", "<box>(1,2),(3,4)</box>")  # "amos"


def unknown(report) -> list[str]:
    return [p.reason for p in report.problems if p.reason.startswith("unknown modality")]


def test_extra_modalities_are_allowed_only_by_name(images):
    items = [*GOOD, OTHER]

    refused = validate(items, images)
    allowed = validate(items, images, extra_modalities=["pathology", " amos "])

    assert unknown(refused) == ["unknown modality 'amos' (from the image name 'amos_0006_90.png')"]
    assert len(refused.problems) == 1
    assert allowed.ok, allowed.problems
    assert validate(items, images, extra_modalities="amos").ok  # one name, not its letters
    assert unknown(validate(items, images, extra_modalities=("pathology", "oct"))) == unknown(
        refused
    )
    # Counted under its own key either way.
    for report in (refused, allowed):
        assert report.modalities == {"ct": 2, "mr": 1, "x": 1, "amos": 1}
    assert "modalities: ct 2, mr 1, x 1, amos 1" in allowed.summary()


def test_extra_modalities_are_read_from_a_data_card(tmp_path):
    card = tmp_path / "data_card.json"
    card.write_text(json.dumps({"seed": 0, "extra_modalities": ["oct", "pathology"]}))
    assert card_extra_modalities(card) == ("oct", "pathology")
    assert card_extra_modalities(tmp_path) == ("oct", "pathology")  # the build folder
    card.write_text(json.dumps({"extra_modalities": []}))
    assert card_extra_modalities(card) == ()

    with pytest.raises(FileNotFoundError, match="does not exist"):
        card_extra_modalities(tmp_path / "none.json")
    for text in ("{not json", '{"seed": 0}', '{"extra_modalities": "oct"}', "[1]"):
        card.write_text(text)
        with pytest.raises(ValueError, match="data card"):
            card_extra_modalities(card)


def test_validate_command_allows_modalities_by_flag_or_card(tmp_path, images, capsys):
    path = str(write_items(tmp_path / "other.json", [*GOOD, OTHER]))
    run = ["validate", path, "--images", str(images)]

    assert main(run) == 1
    assert "unknown modality 'amos'" in capsys.readouterr().out
    assert main([*run, "--allow-modality", "pathology"]) == 1
    assert main([*run, "--allow-modality", "amos"]) == 0
    out = capsys.readouterr().out
    assert "problems: 0" in out and "amos 1" in out
    assert main([*run, "--allow-modality", "pathology,amos"]) == 0
    assert main([*run, "--allow-modality", "oct", "--allow-modality", "amos"]) == 0

    card = tmp_path / "data_card.json"
    card.write_text(json.dumps({"extra_modalities": ["amos"]}))
    assert main([*run, "--data-card", str(card)]) == 0
    assert main([*run, "--data-card", str(tmp_path)]) == 0
    card.write_text(json.dumps({"extra_modalities": ["pathology"]}))
    assert main([*run, "--data-card", str(card)]) == 1
    assert main([*run, "--data-card", str(card), "--allow-modality", "amos"]) == 0
    card.write_text("{}")
    assert main([*run, "--data-card", str(card)]) == 2
    assert main([*run, "--data-card", str(tmp_path / "none.json")]) == 2
