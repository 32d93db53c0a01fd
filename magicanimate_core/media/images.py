"""The pack's one image loader: any picture PIL reads, EXIF-rotated, any mode or bit depth, as float RGBA."""

from __future__ import annotations

import math
import os
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .budget import check_allocation

_HIGH_BIT_MODES = {"I;16": 65535, "I;16L": 65535, "I;16B": 65535, "I;16N": 65535, "I": 65535, "F": 1.0}


# read_image's result (float32 RGBA) is the largest of its copies; fitting and the IMAGE batch follow from it
BYTES_PER_PIXEL = 4 * 4


def read_image(path: str | os.PathLike[str]) -> np.ndarray:
    """The picture at `path` as float32 RGBA `[H, W, 4]` in [0, 1] (opaque alpha when it has none).

    EXIF orientation is applied; palette, grey, CMYK and 1-bit pictures are converted; 16-bit and 32-bit
    integer pictures are scaled from their own range (0..65535), not clipped at 255. Before any pixel is
    decoded, the size the file declares is checked against the memory budget (`media.budget`) and PIL's
    decompression-bomb limit; ValueError / MemoryBudgetError name the file, the size and the fix.
    """
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", Image.DecompressionBombWarning)
            image = Image.open(path)
        bomb = any(issubclass(warning.category, Image.DecompressionBombWarning) for warning in caught)
        with image:
            _check_declared_size(path, image, bomb)
            return _as_rgba(ImageOps.exif_transpose(image))
    except UnidentifiedImageError as error:
        raise ValueError(
            f"{path}: not a picture PIL can read ({error}); the file may be another kind of file renamed, or "
            "damaged: open it in an image editor and save it as PNG or JPEG"
        ) from error
    except Image.DecompressionBombError as error:
        raise ValueError(
            f"{path}: the picture declares more pixels than PIL will decode safely ({error}); "
            "downscale it below 4096x4096 before uploading"
        ) from error
    except (OSError, SyntaxError) as error:  # truncated or damaged files
        raise ValueError(f"{path}: the picture is damaged ({error}); re-export or re-upload it") from error


def _check_declared_size(path: str | os.PathLike[str], image: Image.Image, bomb: bool) -> None:
    """Refuse a declared size over the memory budget or PIL's pixel limit, before decoding."""
    width, height = image.size
    check_allocation(
        f"{path}: a {width}x{height} picture",
        width * height * BYTES_PER_PIXEL,
        lambda limit: (
            f"Downscale it to at most {_fitting_side(limit)}x{_fitting_side(limit)} pixels (the animation "
            "itself is at most 2048x2048) and upload it again."
        ),
    )
    if bomb:
        raise ValueError(
            f"{path}: the picture declares {width}x{height} pixels, more than PIL decodes safely "
            f"({Image.MAX_IMAGE_PIXELS} pixels); downscale it below 4096x4096 before uploading"
        )


def _fitting_side(limit: int) -> int:
    return int(math.isqrt(max(limit, 0) // BYTES_PER_PIXEL))


def _as_rgba(image: Image.Image) -> np.ndarray:
    if image.mode in _HIGH_BIT_MODES:
        grey = np.asarray(image, dtype=np.float32) / _HIGH_BIT_MODES[image.mode]
        grey = np.clip(grey, 0.0, 1.0)
        return np.stack([grey, grey, grey, np.ones_like(grey)], axis=-1)
    return np.asarray(image.convert("RGBA"), dtype=np.float32) / 255
