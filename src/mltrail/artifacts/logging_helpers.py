"""Turn in-memory objects (text, dicts, images) into the bytes of an artifact file.

numpy, Pillow and PyYAML are optional and imported only when an object needs them. A numpy image saved as
PNG needs no Pillow: PNG is simple enough to encode here (zlib + CRC chunks).
"""

from __future__ import annotations

import io
import json
import posixpath
import struct
import zlib
from typing import Any

from mltrail.errors import MltrailException

_PNG_COLOR_TYPES = {1: 0, 2: 4, 3: 2, 4: 6}  # channels -> PNG colour type (grey, grey+alpha, RGB, RGBA)


def _extension(artifact_file: str) -> str:
    return posixpath.splitext(artifact_file)[1].lower()


def text_bytes(text: str) -> bytes:
    if not isinstance(text, str):
        raise MltrailException.invalid_parameter(f"log_text expects a str, got {type(text).__name__}")
    return text.encode("utf-8")


def dict_bytes(dictionary: Any, artifact_file: str) -> bytes:
    """YAML for ``.yaml``/``.yml`` files, JSON (indented) for everything else, as MLflow does."""
    if _extension(artifact_file) in (".yaml", ".yml"):
        import yaml

        return yaml.safe_dump(dictionary, default_flow_style=False).encode("utf-8")
    try:
        return json.dumps(dictionary, indent=2).encode("utf-8")
    except TypeError as exc:
        raise MltrailException.invalid_parameter(f"Cannot serialize the dictionary to JSON: {exc}") from None


def image_bytes(image: Any, artifact_file: str) -> bytes:
    """Encode a Pillow image or a numpy array (HxW, HxWx1..4; uint8 0-255 or float 0-1) as the format the
    file extension names. numpy arrays to ``.png`` need no Pillow."""
    if _is_pil_image(image):
        return _pil_bytes(image, artifact_file)
    if not hasattr(image, "__array_interface__"):
        raise MltrailException.invalid_parameter(
            f"log_image expects a numpy array or a PIL image, got {type(image).__name__}"
        )
    pixels = _normalized_pixels(image)
    if _extension(artifact_file) == ".png":
        return encode_png(pixels)
    try:
        from PIL import Image
    except ImportError:
        raise MltrailException.invalid_parameter(
            f"Saving '{artifact_file}' needs Pillow (pip install pillow); without it use a .png file name"
        ) from None
    return _pil_bytes(Image.fromarray(pixels.squeeze(axis=2) if pixels.shape[2] == 1 else pixels), artifact_file)


def _is_pil_image(image: Any) -> bool:
    return any(cls.__module__.startswith("PIL.") and cls.__name__ == "Image" for cls in type(image).__mro__)


def _pil_bytes(image: Any, artifact_file: str) -> bytes:
    buffer = io.BytesIO()
    try:
        image.save(buffer, format=_pil_format(artifact_file))
    except (KeyError, ValueError, OSError) as exc:
        raise MltrailException.invalid_parameter(f"Cannot save image as '{artifact_file}': {exc}") from None
    return buffer.getvalue()


def _pil_format(artifact_file: str) -> str:
    ext = _extension(artifact_file).lstrip(".")
    if not ext:
        raise MltrailException.invalid_parameter(f"Image file name '{artifact_file}' needs an extension, e.g. .png")
    return {"jpg": "JPEG", "jpeg": "JPEG", "tif": "TIFF"}.get(ext, ext.upper())


def _normalized_pixels(image: Any) -> Any:
    """A HxWxC uint8 array (C in 1..4) from an integer (0-255) or float (0-1) array."""
    import numpy as np

    array = np.asarray(image)
    if array.ndim == 2:
        array = array[:, :, np.newaxis]
    if array.ndim != 3 or array.shape[2] not in _PNG_COLOR_TYPES or 0 in array.shape:
        raise MltrailException.invalid_parameter(
            f"Invalid image shape {array.shape}: expected (height, width) or (height, width, 1|2|3|4)"
        )
    if array.dtype == np.bool_:
        return array.astype(np.uint8) * 255
    if np.issubdtype(array.dtype, np.integer):
        if array.min() < 0 or array.max() > 255:
            raise MltrailException.invalid_parameter("Integer image values must be in [0, 255]")
        return array.astype(np.uint8)
    if np.issubdtype(array.dtype, np.floating):
        if not np.isfinite(array).all() or array.min() < 0 or array.max() > 1:
            raise MltrailException.invalid_parameter("Float image values must be finite and in [0, 1]")
        return np.round(array * 255).astype(np.uint8)
    raise MltrailException.invalid_parameter(f"Unsupported image dtype {array.dtype}")


def encode_png(pixels: Any) -> bytes:
    """PNG bytes of a HxWxC uint8 array (8 bits per channel, no filtering)."""
    import numpy as np

    height, width, channels = pixels.shape
    rows = np.concatenate([np.zeros((height, 1), np.uint8), pixels.reshape(height, width * channels)], axis=1)
    header = struct.pack(">IIBBBBB", width, height, 8, _PNG_COLOR_TYPES[channels], 0, 0, 0)
    return b"".join(
        [
            b"\x89PNG\r\n\x1a\n",
            _png_chunk(b"IHDR", header),
            _png_chunk(b"IDAT", zlib.compress(np.ascontiguousarray(rows).tobytes(), 6)),
            _png_chunk(b"IEND", b""),
        ]
    )


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
