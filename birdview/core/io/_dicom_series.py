"""Grouping scanned headers into series, and the plan `load_dicom` follows for each."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from birdview.core.io._dicom_geometry import Slice, Stack, orientation_key, plane_name, stack
from birdview.core.io._dicom_header import Header, describe
from birdview.core.io._dicom_values import as_int
from birdview.core.io.catalog import SeriesEntry
from birdview.core.volume import SliceSource, short_id

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SeriesPlan:
    """Everything `load_dicom` needs, in slice order: the entry's ``reader_data``."""

    sources: tuple[SliceSource, ...]
    transfer_syntaxes: tuple[str, ...]  # per slice
    pixel_offsets: tuple[int, ...]  # per slice: where its file's pixel data starts
    rescales: tuple[tuple[float, float], ...]  # per slice: (slope, intercept)
    windows: tuple[tuple[float, float] | None, ...]  # per slice
    rows: int
    cols: int
    samples: int
    photometric: str
    bits_stored: int
    modality_lut: bool
    spacing_mm: tuple[float, float, float]  # (column, row, slice)
    origin_lps_mm: tuple[float, float, float]
    direction: tuple[float, ...]  # 3×3 row-major; columns: row dir, column dir, normal
    has_geometry: bool
    modality: str
    series_uid: str
    metadata: dict[str, str] = field(default_factory=dict)
    warnings: tuple[str, ...] = ()


def build_entries(headers: list[Header]) -> list[SeriesEntry]:
    """Series entries for the scanned headers, sorted by study date and series number."""
    unique, dropped = _drop_duplicate_files(headers)
    groups: dict[str, list[Header]] = {}
    for header in unique:
        key = header.series_key + ("|" + header.path if header.is_multi_frame else "")
        groups.setdefault(key, []).append(header)
    entries = []
    for key, members in groups.items():
        notes = [f"{dropped[key]} duplicate file(s) ignored"] if dropped.get(key) else []
        entries += _split_by_geometry(key, members, notes)
    entries.sort(
        key=lambda e: (e.study, e.series_number is None, e.series_number or 0, e.description)
    )
    return entries


def _drop_duplicate_files(headers: list[Header]) -> tuple[list[Header], dict[str, int]]:
    """The same instance twice (a copied file) would stack twice at every position."""
    seen: set[str] = set()
    unique, dropped = [], {}
    for header in headers:
        if header.sop_instance and header.sop_instance in seen:
            dropped[header.series_key] = dropped.get(header.series_key, 0) + 1
            continue
        seen.add(header.sop_instance)
        unique.append(header)
    return unique, dropped


def _split_by_geometry(key: str, headers: list[Header], notes: list[str]) -> list[SeriesEntry]:
    """One entry per image size and orientation within a series."""
    parts: dict[tuple, list[Header]] = {}
    for header in headers:
        size = (header.rows, header.cols, header.samples)
        parts.setdefault((size, orientation_key(header.frames[0].orientation)), []).append(header)
    sizes = {size for size, _ in parts}
    orientations = {orientation for _, orientation in parts}
    entries = []
    for (size, orientation), members in parts.items():
        extra, suffix = list(notes), []
        if len(sizes) > 1:
            extra.append(
                "mixed sizes: this series also has images of another size, listed separately"
            )
            suffix.append(f"{size[0]}×{size[1]}")
        if len(orientations) > 1:
            extra.append(
                "mixed orientations: this series also has images in another orientation, "
                "listed separately"
            )
            suffix.append(plane_name(members[0].frames[0].orientation))
        part_key = f"{key}|{size}|{orientation}"
        entries.append(_entry(part_key, members, extra, suffix))
    return entries


def _entry(key: str, headers: list[Header], notes: list[str], suffix: list[str]) -> SeriesEntry:
    first = headers[0]
    info = describe(first)
    slices = [Slice(header, frame) for header in headers for frame in header.frames]
    # A classic multi-frame (a cine) has no per-frame positions: its frame order is its order.
    keep_order = first.is_multi_frame and any(s.frame.position is None for s in slices)
    stacked = stack(slices, keep_order=keep_order)
    plan = _plan(stacked, first, info, tuple(notes) + stacked.warnings)
    for warning in plan.warnings:  # numbers only: no patient data
        logger.warning("DICOM series %s: %s", short_id(key), warning)
    description = _description(info) + (f" ({', '.join(suffix)})" if suffix else "")
    return SeriesEntry(
        kind="dicom",
        key=short_id(key),
        patient=_patient(info),
        study=_study(info),
        description=description,
        modality=info["modality"],
        n_slices=len(stacked.slices),
        paths=tuple(dict.fromkeys(s.header.path for s in stacked.slices)),
        warnings=plan.warnings,
        series_number=as_int(info["series_number"]),
        reader_data=plan,
    )


def _plan(
    stacked: Stack, first: Header, info: dict[str, str], warnings: tuple[str, ...]
) -> SeriesPlan:
    slices = stacked.slices
    return SeriesPlan(
        sources=tuple(_source(s) for s in slices),
        transfer_syntaxes=tuple(s.header.transfer_syntax for s in slices),
        pixel_offsets=tuple(s.header.pixel_offset for s in slices),
        rescales=tuple(s.frame.rescale for s in slices),
        windows=tuple(s.frame.window for s in slices),
        rows=first.rows,
        cols=first.cols,
        samples=first.samples,
        photometric=first.photometric,
        bits_stored=first.bits_stored,
        modality_lut=any(s.header.modality_lut for s in slices),
        spacing_mm=stacked.spacing_mm,
        origin_lps_mm=stacked.origin_lps_mm,
        direction=stacked.direction,
        has_geometry=stacked.has_geometry,
        modality=info["modality"],
        series_uid=first.series_uid,
        metadata={key: text for key, text in info.items() if key != "modality"},
        warnings=warnings,
    )


def _source(piece: Slice) -> SliceSource:
    """A slice's file and frame, with its Instance Number and Slice Location for the overlay;
    not for the frames of a multi-frame file, which share one Instance Number."""
    header = piece.header
    if header.is_multi_frame:
        return SliceSource(header.path, piece.frame.frame)
    return SliceSource(
        header.path,
        piece.frame.frame,
        instance_number=header.instance_number,
        location_mm=header.slice_location,
    )


def _description(info: dict[str, str]) -> str:
    if info["series_description"]:
        return info["series_description"]
    number = f" series {info['series_number']}" if info["series_number"] else ""
    return f"{info['modality']}{number}"


def _patient(info: dict[str, str]) -> str:
    name = info.get("patient_name", "").replace("^", " ").strip()
    name = " ".join(name.split())
    patient_id = info.get("patient_id", "")
    if name and patient_id:
        return f"{name} ({patient_id})"
    return name or (f"({patient_id})" if patient_id else "")


def _study(info: dict[str, str]) -> str:
    date = info.get("study_date", "")
    if len(date) == 8 and date.isdigit():
        date = f"{date[:4]}-{date[4:6]}-{date[6:]}"
    return " ".join(part for part in (date, info.get("study_description", "")) if part)
