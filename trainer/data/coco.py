"""COCO detection JSON (``coco`` source kind): ``images``, ``annotations``, ``categories``.

The fields read are the ones pycocotools' ``COCO`` reads for detection: each image's ``id``,
``file_name`` (relative to the images folder; TBX11K writes ``tb/tb0005.png``), ``width`` and
``height``; each annotation's ``id``, ``image_id``, ``category_id``, ``bbox`` = [x, y, width,
height] in pixels and ``iscrowd``; each category's ``id`` and ``name``. ``segmentation`` and
``area`` are not needed for boxes and are not read.

Everything is checked before one image is written, and the first problem is refused with one
line naming the file and the record: a malformed file, an image or annotation without its
fields, a duplicate id, an annotation of an unknown image or category, a box with no area or
outside its image, an image file that is not there. An image file whose size is not the one
stated is found when its turn comes; the build then leaves nothing behind. Crowd boxes
(``iscrowd`` 1) frame a group of objects, not one, so they are left out (counted in the card);
their label is then not taken as absent from that image.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from numbers import Real
from pathlib import Path
from typing import Any

from trainer._json_stream import read_json
from trainer.data.box_records import (
    AnnotatedBox,
    BoxFile,
    BoxImage,
    find_image,
    image_folder,
    outside,
)
from trainer.data.sources import SourceSpec

__all__ = ["read_coco"]


def read_coco(spec: SourceSpec) -> BoxFile:
    """The images and boxes of the COCO file ``spec.path``.

    Raises:
        ValueError: the file is malformed, or names an image file that is not there.
    """
    path = spec.path
    data = read_json(path, "the COCO file")
    if not isinstance(data, dict):
        raise ValueError(f"Unable to read '{path}' as COCO: it holds no object")
    categories = _categories(path, _list(path, data, "categories"))
    images = _images(path, _list(path, data, "images"))
    boxes: dict[Any, list[AnnotatedBox]] = defaultdict(list)
    crowd: dict[Any, set[str]] = defaultdict(set)
    skipped: Counter = Counter()
    for index, record in enumerate(_list(path, data, "annotations")):
        image_id, label, box, is_crowd = _annotation(path, index, record, images, categories)
        if is_crowd:
            crowd[image_id].add(label)
            skipped["crowd box (iscrowd 1)"] += 1
        else:
            boxes[image_id].append(box)
    first = next(iter(images.values()), None)
    folder = image_folder(
        spec, first["file_name"] if first else None, f"image {first['id']!r}" if first else ""
    )
    found = tuple(
        _box_image(path, folder, record, boxes[image_id], crowd[image_id])
        for image_id, record in images.items()
    )
    return BoxFile(tuple(dict.fromkeys(categories.values())), found, skipped)


def _list(path: Path, data: dict, key: str) -> list:
    value = data.get(key)
    if not isinstance(value, list):
        raise ValueError(f"Unable to read '{path}' as COCO: '{key}' is not a list")
    return value


def _categories(path: Path, records: list) -> dict[Any, str]:
    found: dict[Any, str] = {}
    for index, record in enumerate(records):
        if not isinstance(record, dict) or "id" not in record or not record.get("name"):
            raise ValueError(
                f"Unable to read '{path}': category {index} has no 'id' and 'name': "
                f"{_short(record)}"
            )
        if record["id"] in found:
            raise ValueError(f"Unable to read '{path}': category id {record['id']!r} is repeated")
        found[record["id"]] = str(record["name"]).strip()
    return found


def _images(path: Path, records: list) -> dict[Any, dict]:
    found: dict[Any, dict] = {}
    for index, record in enumerate(records):
        fields_ok = isinstance(record, dict) and "id" in record and record.get("file_name")
        if not fields_ok or not all(_positive_int(record.get(k)) for k in ("width", "height")):
            raise ValueError(
                f"Unable to read '{path}': image {index} needs 'id', 'file_name' and positive "
                f"integer 'width' and 'height': {_short(record)}"
            )
        if record["id"] in found:
            raise ValueError(f"Unable to read '{path}': image id {record['id']!r} is repeated")
        found[record["id"]] = record
    return found


def _annotation(
    path: Path, index: int, record: Any, images: dict, categories: dict
) -> tuple[Any, str, AnnotatedBox | None, bool]:
    if not isinstance(record, dict) or "image_id" not in record or "category_id" not in record:
        raise ValueError(
            f"Unable to read '{path}': annotation {index} needs 'image_id', 'category_id' and "
            f"'bbox': {_short(record)}"
        )
    name = f"annotation {record.get('id', index)!r}"
    image = images.get(record["image_id"])
    if image is None:
        raise ValueError(
            f"Unable to read '{path}': {name} is of image id {record['image_id']!r}, which is "
            "not in 'images'"
        )
    label = categories.get(record["category_id"])
    if label is None:
        raise ValueError(
            f"Unable to read '{path}': {name} has category_id {record['category_id']!r}, which "
            f"is not in 'categories' (ids: {sorted(categories, key=str)[:10]})"
        )
    bbox = record.get("bbox")
    if not _is_bbox(bbox):
        raise ValueError(
            f"Unable to read '{path}': {name} has bbox {bbox!r}, not [x, y, width, height] "
            "with a positive width and height"
        )
    x, y, w, h = (float(v) for v in bbox)
    width, height = image["width"], image["height"]
    if outside((x, y, x + w, y + h), (width, height)):
        raise ValueError(
            f"Unable to read '{path}': {name} has bbox {bbox!r} outside its image "
            f"{image['id']!r} '{image['file_name']}' of {width}x{height}"
        )
    box = AnnotatedBox(label, x, y, x + w, y + h, name)
    return record["image_id"], label, box, bool(record.get("iscrowd", 0))


def _box_image(path: Path, folder: Path, record: dict, boxes: list, crowd: set[str]) -> BoxImage:
    file = find_image(folder, record["file_name"])
    if file is None:
        raise ValueError(
            f"Unable to read '{path}': image {record['id']!r} names '{record['file_name']}', "
            f"which is not in '{folder}'"
        )
    return BoxImage(
        file=file,
        key=str(record["file_name"]),
        record=f"image {record['id']!r}",
        boxes=tuple(boxes),
        size=(record["width"], record["height"]),
        # A crowd box's label is in the image, though it has no box of its own here.
        also_present=tuple(sorted(crowd)),
    )


def _is_bbox(value: Any) -> bool:
    return (
        isinstance(value, list | tuple)
        and len(value) == 4
        and all(isinstance(v, Real) and not isinstance(v, bool) for v in value)
        and value[2] > 0
        and value[3] > 0
    )


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _short(record: Any) -> str:
    text = repr(record)
    return text if len(text) <= 120 else text[:117] + "..."
