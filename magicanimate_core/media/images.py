"""The pack's one image loader: any picture PIL reads, EXIF-rotated, any mode or bit depth, as float RGBA."""

from __future__ import annotations

import os
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

_HIGH_BIT_MODES = {"I;16": 65535, "I;16L": 65535, "I;16B": 65535, "I;16N": 65535, "I": 65535, "F": 1.0}


def read_image(path: str | os.PathLike[str]) -> np.ndarray:
    """The picture at `path` as float32 RGBA `[H, W, 4]` in [0, 1] (opaque alpha when it has none).

    EXIF orientation is applied; palette, grey, CMYK and 1-bit pictures are converted; 16-bit and 32-bit
    integer pictures are scaled from their own range (0..65535), not clipped at 255.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                return _as_rgba(ImageOps.exif_transpose(image))
    except UnidentifiedImageError as error:
        raise ValueError(f"{path}: not a picture PIL can read ({error}); save it as PNG or JPEG") from error
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise ValueError(
            f"{path}: the picture declares more pixels than PIL will decode safely ({error}); "
            "downscale it below 4096x4096 before uploading"
        ) from error
    except (OSError, SyntaxError) as error:  # truncated or damaged files
        raise ValueError(f"{path}: the picture is damaged ({error}); re-export or re-upload it") from error


def _as_rgba(image: Image.Image) -> np.ndarray:
    if image.mode in _HIGH_BIT_MODES:
        grey = np.asarray(image, dtype=np.float32) / _HIGH_BIT_MODES[image.mode]
        grey = np.clip(grey, 0.0, 1.0)
        return np.stack([grey, grey, grey, np.ones_like(grey)], axis=-1)
    return np.asarray(image.convert("RGBA"), dtype=np.float32) / 255
