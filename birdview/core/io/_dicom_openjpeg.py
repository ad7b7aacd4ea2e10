"""A pydicom decoding plugin for JPEG 2000 that lets other threads run while it decodes.

pydicom's JPEG 2000 plugins (gdcm, pylibjpeg-openjpeg, Pillow) hold the GIL for the whole
decode, so decoding a series on a thread pool is no faster than on one thread. This plugin
calls the same library, OpenJPEG, through ctypes, which drops the GIL for every foreign call:
frames then decode on as many cores as there are threads.

It handles what the series BirdView opens hold: one component (grey) of up to 16 bits, not
subsampled. Anything else raises, and the caller goes on to the next plugin. The output is
what pylibjpeg-openjpeg returns (little-endian samples in a container sized by the codestream's
precision), and pydicom's runner then treats it the same way.

The library is the one Pillow ships (a core dependency) or, failing that, the system's.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import glob
import logging
import os
import threading

import numpy as np
from pydicom import uid
from pydicom.pixels import get_decoder
from pydicom.pixels.decoders.base import DecodeRunner

__all__ = ["DECODER_DEPENDENCIES", "LABEL", "decode_frame", "is_available", "register"]

logger = logging.getLogger(__name__)

DECODER_DEPENDENCIES = {
    syntax: ("Pillow (with OpenJPEG) or libopenjp2",)
    for syntax in (
        uid.JPEG2000Lossless, uid.JPEG2000, uid.HTJ2KLossless, uid.HTJ2KLosslessRPCL, uid.HTJ2K,
    )
}  # fmt: skip

LABEL = "birdview-openjpeg"  # the plugin's name in pydicom's decoders
_HTJ2K = {uid.HTJ2KLossless, uid.HTJ2KLosslessRPCL, uid.HTJ2K}
_CODEC_J2K, _CODEC_JP2 = 0, 2
_JP2_SIGNATURE = b"\x00\x00\x00\x0cjP  \r\n\x87\n"
# opj_dparameters_t is about 8 KiB and its layout varies between versions: the library fills
# it (opj_set_default_decoder_parameters), so a buffer that is surely large enough will do.
_PARAMETERS_BYTES = 64 * 1024
_READ_FN = ctypes.CFUNCTYPE(ctypes.c_size_t, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p)
_SKIP_FN = ctypes.CFUNCTYPE(ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p)
_SEEK_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int64, ctypes.c_void_p)
_END_OF_STREAM = ctypes.c_size_t(-1).value


class _Component(ctypes.Structure):
    # opj_image_comp_t; stable since OpenJPEG 2.0 (``bpp`` is deprecated but still there).
    _fields_ = [
        ("dx", ctypes.c_uint32), ("dy", ctypes.c_uint32),
        ("w", ctypes.c_uint32), ("h", ctypes.c_uint32),
        ("x0", ctypes.c_uint32), ("y0", ctypes.c_uint32),
        ("prec", ctypes.c_uint32), ("bpp", ctypes.c_uint32), ("sgnd", ctypes.c_uint32),
        ("resno_decoded", ctypes.c_uint32), ("factor", ctypes.c_uint32),
        ("data", ctypes.POINTER(ctypes.c_int32)), ("alpha", ctypes.c_uint16),
    ]  # fmt: skip


class _Image(ctypes.Structure):
    # opj_image_t
    _fields_ = [
        ("x0", ctypes.c_uint32), ("y0", ctypes.c_uint32),
        ("x1", ctypes.c_uint32), ("y1", ctypes.c_uint32),
        ("numcomps", ctypes.c_uint32), ("color_space", ctypes.c_int),
        ("comps", ctypes.POINTER(_Component)),
        ("icc_profile_buf", ctypes.c_void_p), ("icc_profile_len", ctypes.c_uint32),
    ]  # fmt: skip


_library: ctypes.CDLL | None = None
_library_version: tuple[int, ...] = ()
_library_lock = threading.Lock()
_library_tried = False
_registered: set[str] = set()
_register_lock = threading.Lock()  # not _library_lock: pydicom's add_plugin calls _load


def _candidates() -> list[str]:
    """Pillow's bundled copy first (it travels with the wheel), then the system's."""
    found = []
    try:
        import PIL

        base = os.path.dirname(os.path.dirname(PIL.__file__))
        for pattern in ("pillow.libs/libopenjp2*", "PIL/.dylibs/libopenjp2*"):
            found += sorted(glob.glob(os.path.join(base, pattern)))
    except ImportError:
        pass
    system = ctypes.util.find_library("openjp2")
    return found + ([system] if system else [])


def _load() -> ctypes.CDLL | None:
    global _library, _library_version, _library_tried
    with _library_lock:
        if _library_tried:
            return _library
        _library_tried = True
        for path in _candidates():
            try:
                library = ctypes.CDLL(path)
                _declare(library)
                version = tuple(int(part) for part in library.opj_version().split(b".")[:2])
            except (OSError, AttributeError, ValueError) as exc:
                logger.debug("OpenJPEG at %s is not usable: %s", path, exc)
                continue
            if version[:1] != (2,):  # the structures below are OpenJPEG 2's
                continue
            logger.debug("decoding JPEG 2000 on threads with OpenJPEG %s from %s", version, path)
            _library, _library_version = library, version
            break
        return _library


def _declare(lib: ctypes.CDLL) -> None:
    """Argument and result types (ctypes would truncate the pointers to int otherwise)."""
    p = ctypes.c_void_p
    for name, restype, argtypes in (
        ("opj_version", ctypes.c_char_p, []),
        ("opj_create_decompress", p, [ctypes.c_int]),
        ("opj_set_default_decoder_parameters", None, [p]),
        ("opj_setup_decoder", ctypes.c_int, [p, p]),
        ("opj_stream_create", p, [ctypes.c_size_t, ctypes.c_int]),
        ("opj_stream_set_read_function", None, [p, _READ_FN]),
        ("opj_stream_set_skip_function", None, [p, _SKIP_FN]),
        ("opj_stream_set_seek_function", None, [p, _SEEK_FN]),
        ("opj_stream_set_user_data_length", None, [p, ctypes.c_uint64]),
        ("opj_read_header", ctypes.c_int, [p, p, ctypes.POINTER(ctypes.POINTER(_Image))]),
        ("opj_decode", ctypes.c_int, [p, p, ctypes.POINTER(_Image)]),
        ("opj_end_decompress", ctypes.c_int, [p, p]),
        ("opj_image_destroy", None, [ctypes.POINTER(_Image)]),
        ("opj_stream_destroy", None, [p]),
        ("opj_destroy_codec", None, [p]),
    ):
        function = getattr(lib, name)
        function.restype = restype
        function.argtypes = argtypes


def is_available(syntax: str) -> bool:
    """pydicom's plugin check: a JPEG 2000 transfer syntax and a loadable OpenJPEG (2.5 or
    later for High-Throughput JPEG 2000)."""
    if syntax not in DECODER_DEPENDENCIES or _load() is None:
        return False
    return syntax not in _HTJ2K or _library_version >= (2, 5)


def register(syntax: str) -> bool:
    """Add the plugin to pydicom's decoder for ``syntax`` if it can decode it; True if it is
    there. Only an available plugin is added, so pydicom's "missing dependencies" stay as
    they were."""
    if syntax not in _registered and not is_available(syntax):
        return False
    with _register_lock:
        if syntax not in _registered:
            _registered.add(syntax)
            get_decoder(syntax).add_plugin(LABEL, (__name__, "decode_frame"))
    return LABEL in get_decoder(syntax).available_plugins


def decode_frame(src: bytes, runner: DecodeRunner) -> bytearray:
    """pydicom's plugin entry point: one frame's codestream to its samples.

    Raises:
        ValueError: the frame is not one the plugin handles (colour, over 16 bits, subsampled).
        RuntimeError: OpenJPEG could not decode the frame.
    """
    lib = _load()
    if lib is None:
        raise RuntimeError("OpenJPEG is not available")
    image = _decode(lib, bytes(src))
    try:
        samples = _samples(image.contents)
    finally:
        lib.opj_image_destroy(image)
    # As pylibjpeg's plugin: the container's size follows the codestream's precision. (Its
    # YBR_ICT/RCT to RGB switch does not arise: colour frames are not handled here.)
    runner.set_option("bits_allocated", samples.dtype.itemsize * 8)
    return bytearray(memoryview(samples.astype(samples.dtype.newbyteorder("<"), copy=False)))


def _decode(lib: ctypes.CDLL, data: bytes) -> ctypes._Pointer:
    """Run OpenJPEG on ``data``; the caller destroys the returned image."""
    buffer = ctypes.create_string_buffer(data, len(data))
    position = [0]

    # The stream callbacks run in OpenJPEG's call, so they take the GIL back for a moment;
    # they only copy bytes, and OpenJPEG asks for the whole stream in one or two reads.
    def read(out: int, size: int, _user: int) -> int:
        left = len(data) - position[0]
        if left <= 0:
            return _END_OF_STREAM
        count = min(size, left)
        ctypes.memmove(out, ctypes.addressof(buffer) + position[0], count)
        position[0] += count
        return count

    def skip(count: int, _user: int) -> int:
        target = min(max(position[0] + count, 0), len(data))
        skipped, position[0] = target - position[0], target
        return skipped

    def seek(where: int, _user: int) -> int:
        if not 0 <= where <= len(data):
            return 0
        position[0] = where
        return 1

    callbacks = (_READ_FN(read), _SKIP_FN(skip), _SEEK_FN(seek))
    codec_format = _CODEC_JP2 if data.startswith(_JP2_SIGNATURE) else _CODEC_J2K
    codec = lib.opj_create_decompress(codec_format)
    stream = lib.opj_stream_create(max(len(data), 1), 1)
    image = ctypes.POINTER(_Image)()
    try:
        parameters = ctypes.create_string_buffer(_PARAMETERS_BYTES)
        lib.opj_set_default_decoder_parameters(parameters)
        if not codec or not stream or not lib.opj_setup_decoder(codec, parameters):
            raise RuntimeError("OpenJPEG could not set up its decoder")
        lib.opj_stream_set_read_function(stream, callbacks[0])
        lib.opj_stream_set_skip_function(stream, callbacks[1])
        lib.opj_stream_set_seek_function(stream, callbacks[2])
        lib.opj_stream_set_user_data_length(stream, len(data))
        if not lib.opj_read_header(stream, codec, ctypes.byref(image)):
            raise RuntimeError("Error decoding the J2K data: failed to read the header")
        if not lib.opj_decode(codec, stream, image) or not lib.opj_end_decompress(codec, stream):
            raise RuntimeError("Error decoding the J2K data: failed to decode image")
    except BaseException:
        if image:
            lib.opj_image_destroy(image)
        raise
    finally:
        if stream:
            lib.opj_stream_destroy(stream)
        if codec:
            lib.opj_destroy_codec(codec)
    return image


def _samples(image: _Image) -> np.ndarray:
    """The one component's values, in the container pylibjpeg-openjpeg would use."""
    if image.numcomps != 1:
        raise ValueError(f"the frame has {image.numcomps} components (only grey is handled)")
    component = image.comps[0]
    if component.dx != 1 or component.dy != 1 or not component.data:
        raise ValueError("the frame's component is subsampled or empty")
    if not 0 < component.prec <= 16:
        raise ValueError(f"the frame has {component.prec}-bit samples (up to 16 handled)")
    count = component.w * component.h
    values = np.ctypeslib.as_array(component.data, shape=(count,))
    bits = 8 if component.prec <= 8 else 16
    dtype = np.dtype(f"{'i' if component.sgnd else 'u'}{bits // 8}")
    return values.astype(dtype)  # wraps like pylibjpeg-openjpeg's C cast
