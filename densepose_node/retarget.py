"""Move the motion's body onto the reference person's build, on DensePose part-index frames.

`global`: one scale (ratio of body heights, head top to feet) and one translation, fitted on the align frame:
the motion's feet land on the reference's lowest body row and its centre (torso centroid, else body centroid)
on the reference's; every frame gets the same map, so travel across the clip is scaled too.

`parts`: on top of that, every body segment (DensePose's 24 labels grouped into 14 segments) is scaled along
and across its axis to the reference's proportions, measured on the reference and on the align frame. Joints
are where chain neighbours touch (elbow, wrist, knee, ankle, neck; shoulders and hips mirror the elbow / knee
through the upper limb's centroid); children hang from their parent's mapped joint (torso -> upper limb ->
lower limb -> hand / foot, torso -> head), pixels are warped by inverse mapping with nearest sampling and
painted back to front. A segment missing in the reference or the align frame keeps the global scale; a segment
missing in a frame stays missing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .labels import detect_colormap, labels_from_rgb
from .render import colorize, paint_labels, palette

if TYPE_CHECKING:
    from .backends import Estimator

log = logging.getLogger(__name__)

MODES = ("off", "global", "parts")
SEGMENT_LABELS: tuple[tuple[str, tuple[int, ...]], ...] = (
    ("torso", (1, 2)),
    ("head", (23, 24)),
    ("upper_arm_left", (15, 17)),
    ("upper_arm_right", (16, 18)),
    ("lower_arm_left", (19, 21)),
    ("lower_arm_right", (20, 22)),
    ("hand_left", (4,)),
    ("hand_right", (3,)),
    ("upper_leg_left", (8, 10)),
    ("upper_leg_right", (7, 9)),
    ("lower_leg_left", (12, 14)),
    ("lower_leg_right", (11, 13)),
    ("foot_left", (5,)),
    ("foot_right", (6,)),
)
SEGMENTS = len(SEGMENT_LABELS)
BACKGROUND = SEGMENTS  # segment index of label 0
TORSO = 0
UPPER_LIMBS = (2, 3, 8, 9)
# parent of each segment; hands and feet may swap sides (DensePose sources disagree on 3/4 and 5/6), see _parents
PARENTS = (-1, TORSO, TORSO, TORSO, 2, 3, 4, 5, TORSO, TORSO, 8, 9, 10, 11)
EXTREMITY_PAIRS = ((6, 7, 4, 5), (12, 13, 10, 11))  # (left end, right end, left parent, right parent)
PAINT_ORDER = (0, 8, 9, 10, 11, 12, 13, 1, 2, 3, 4, 5, 6, 7)  # torso, legs, head, arms: back to front
MIN_PIXELS = 12  # a segment smaller than this is not measured (it keeps the global scale)
MAX_PART_RATIO = 2.0  # a segment's scale stays within [1/2, 2] x the global scale
CHUNK = 16  # frames measured at once

_SEGMENT_OF_LABEL = np.full(256, BACKGROUND, np.uint8)
for _index, (_, _labels) in enumerate(SEGMENT_LABELS):
    _SEGMENT_OF_LABEL[list(_labels)] = _index


@dataclass(frozen=True)
class Bodies:
    """Per-frame geometry of F label maps (x, y in pixels, pixel centres at +0.5)."""

    count: np.ndarray  # [F, S] pixels per segment
    centroid: np.ndarray  # [F, S, 2]
    cov: np.ndarray  # [F, S, 2, 2]
    contact: np.ndarray  # [F, S, S] boundary length between two segments
    contact_point: np.ndarray  # [F, S, S, 2] centre of that boundary (nan where none)
    box: np.ndarray  # [F, S, 4] row0, row1, col0, col1 (inclusive; row0 > row1 when missing)


@dataclass(frozen=True)
class Extent:
    """A body's vertical extent and horizontal centre (top and bottom are pixel edges)."""

    top: float
    bottom: float
    centre_x: float


def measure(labels: np.ndarray) -> Bodies:
    """Geometry of each segment of label maps `labels` [F, H, W] (uint8 DensePose indices)."""
    frames, height, width = labels.shape
    body = labels.any(axis=0)
    rows_used, cols_used = np.flatnonzero(body.any(axis=1)), np.flatnonzero(body.any(axis=0))
    top, left = (int(rows_used[0]), int(cols_used[0])) if rows_used.size else (0, 0)
    bottom, right = (int(rows_used[-1]) + 1, int(cols_used[-1]) + 1) if rows_used.size else (0, 0)
    segments = _SEGMENT_OF_LABEL[labels[:, top:bottom, left:right]]
    f, rows, cols = np.nonzero(segments != BACKGROUND)
    group = f * SEGMENTS + segments[f, rows, cols].astype(np.int64)
    rows, cols = rows + top, cols + left
    size = frames * SEGMENTS
    x, y = cols + 0.5, rows + 0.5
    count = np.bincount(group, minlength=size).astype(np.float64)
    safe = np.maximum(count, 1)
    mx, my = np.bincount(group, x, size) / safe, np.bincount(group, y, size) / safe
    cxx = np.bincount(group, x * x, size) / safe - mx * mx
    cyy = np.bincount(group, y * y, size) / safe - my * my
    cxy = np.bincount(group, x * y, size) / safe - mx * my
    cov = np.stack([np.stack([cxx, cxy], -1), np.stack([cxy, cyy], -1)], -2).reshape(frames, SEGMENTS, 2, 2)

    def span(index: np.ndarray, length: int) -> tuple[np.ndarray, np.ndarray]:
        present = np.bincount(group * length + index, minlength=size * length).reshape(size, length) > 0
        return present.argmax(1), length - 1 - present[:, ::-1].argmax(1)

    (row0, row1), (col0, col1) = span(rows, height), span(cols, width)
    box = np.stack([row0, row1, col0, col1], -1).reshape(frames, SEGMENTS, 4)
    box[count.reshape(frames, SEGMENTS) == 0] = (1, 0, 1, 0)

    pairs = np.zeros(frames * SEGMENTS * SEGMENTS)
    px, py = np.zeros_like(pairs), np.zeros_like(pairs)
    for a, b, dx, dy in (
        (segments[:, :, :-1], segments[:, :, 1:], 1.0, 0.5),
        (segments[:, :-1, :], segments[:, 1:, :], 0.5, 1.0),
    ):
        bf, br, bc = np.nonzero((a != b) & (a != BACKGROUND) & (b != BACKGROUND))
        first, second = a[bf, br, bc].astype(np.int64), b[bf, br, bc].astype(np.int64)
        br, bc = br + top, bc + left
        for i, j in ((first, second), (second, first)):
            code = (bf * SEGMENTS + i) * SEGMENTS + j
            pairs += np.bincount(code, minlength=pairs.size)
            px += np.bincount(code, bc + dx, pairs.size)
            py += np.bincount(code, br + dy, pairs.size)
    with np.errstate(invalid="ignore", divide="ignore"):
        point = np.stack([px / pairs, py / pairs], -1)
    return Bodies(
        count.reshape(frames, SEGMENTS),
        np.stack([mx, my], -1).reshape(frames, SEGMENTS, 2),
        cov,
        pairs.reshape(frames, SEGMENTS, SEGMENTS),
        point.reshape(frames, SEGMENTS, SEGMENTS, 2),
        box,
    )


def extent(labels: np.ndarray, what: str) -> Extent:
    """Top and bottom edge and centre x of the body in one label map [H, W]; ValueError naming `what` if empty."""
    body = labels > 0
    rows = np.flatnonzero(body.any(axis=1))
    if rows.size == 0:
        raise ValueError(f"{what} shows no body parts (every pixel is DensePose background)")
    torso = np.isin(labels, SEGMENT_LABELS[TORSO][1])
    _, cols = np.nonzero(torso if torso.sum() >= MIN_PIXELS else body)
    return Extent(float(rows[0]), float(rows[-1] + 1), float(cols.mean() + 0.5))


def _parents(*bodies: Bodies) -> np.ndarray:
    """PARENTS with each hand / foot pair attached to the lower limbs they touch most (left/right swapped or not)."""
    parents = np.array(PARENTS)
    contact = sum(b.contact.sum(0) for b in bodies)
    for left, right, left_parent, right_parent in EXTREMITY_PAIRS:
        straight = contact[left, left_parent] + contact[right, right_parent]
        crossed = contact[left, right_parent] + contact[right, left_parent]
        if crossed > straight:
            parents[left], parents[right] = right_parent, left_parent
    return parents


def _joints(bodies: Bodies, parents: np.ndarray) -> np.ndarray:
    """Proximal joint of each segment [F, S, 2]: where it meets its parent (the torso's is its centroid)."""
    centroid = bodies.centroid
    joints = centroid.copy()
    for segment in range(1, SEGMENTS):
        parent = parents[segment]
        children = np.flatnonzero(parents == segment)
        touching = bodies.contact[:, segment, parent] > 0
        joint = np.where(touching[:, None], bodies.contact_point[:, segment, parent], centroid[:, segment])
        if children.size:
            distal = bodies.contact_point[:, segment, children[0]]
            has_distal = bodies.contact[:, segment, children[0]] > 0
            mirrored = 2 * centroid[:, segment] - distal
            use_mirror = has_distal if segment in UPPER_LIMBS else has_distal & ~touching
            joint = np.where(use_mirror[:, None], mirrored, joint)
        joints[:, segment] = joint
    return joints


def _axes(bodies: Bodies, joints: np.ndarray) -> np.ndarray:
    """Unit axis of each segment [F, S, 2]: joint -> centroid when they are apart, else the principal axis."""
    cov = bodies.cov
    angle = 0.5 * np.arctan2(2 * cov[..., 0, 1], cov[..., 0, 0] - cov[..., 1, 1])
    principal = np.stack([np.cos(angle), np.sin(angle)], -1)
    direction = bodies.centroid - joints
    length = np.linalg.norm(direction, axis=-1, keepdims=True)
    use = length > 1.5
    use[:, TORSO] = False
    return np.where(use, direction / np.maximum(length, 1e-9), principal)


def _spreads(bodies: Bodies, axes: np.ndarray) -> np.ndarray:
    """Standard deviation of each segment's pixels along and across its axis [F, S, 2]."""
    normals = np.stack([-axes[..., 1], axes[..., 0]], -1)
    along = np.einsum("fsi,fsij,fsj->fs", axes, bodies.cov, axes)
    across = np.einsum("fsi,fsij,fsj->fs", normals, bodies.cov, normals)
    return np.sqrt(np.maximum(np.stack([along, across], -1), 0))


def _part_scales(reference: Bodies, align: Bodies, parents: np.ndarray, scale: float) -> np.ndarray:
    """Scale of each segment along and across its axis [S, 2], reference over align frame."""
    spreads = [_spreads(b, _axes(b, _joints(b, parents)))[0] for b in (reference, align)]
    measured = (reference.count[0] >= MIN_PIXELS) & (align.count[0] >= MIN_PIXELS)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = spreads[0] / spreads[1]
    ratio = np.where(measured[:, None] & np.isfinite(ratio) & (ratio > 0), ratio, scale)
    return ratio.clip(scale / MAX_PART_RATIO, scale * MAX_PART_RATIO)


def _global_map(scale: float, source: Extent, target: Extent) -> np.ndarray:
    """2x3 affine: `source`'s feet and centre onto `target`'s, scaled by `scale`."""
    shift = np.array([target.centre_x - scale * source.centre_x, target.bottom - scale * source.bottom])
    return np.concatenate([scale * np.eye(2), shift[:, None]], 1)


def _part_maps(
    bodies: Bodies, parents: np.ndarray, scales: np.ndarray, base: np.ndarray, offset: np.ndarray
) -> np.ndarray:
    """Per-frame, per-segment 2x3 affine maps [F, S, 2, 3] from motion pixels to output pixels."""
    frames = bodies.count.shape[0]
    joints = _joints(bodies, parents)
    axes = _axes(bodies, joints)
    normals = np.stack([-axes[..., 1], axes[..., 0]], -1)
    linear = (
        scales[None, :, 0, None, None] * axes[..., :, None] * axes[..., None, :]
        + scales[None, :, 1, None, None] * normals[..., :, None] * normals[..., None, :]
    )
    present = bodies.count > 0
    maps = np.empty((frames, SEGMENTS, 2, 3))
    root = np.broadcast_to(base, (frames, 2, 3)).copy()
    root[:, :, 2] += offset
    for segment in range(SEGMENTS):
        parent_map = root if parents[segment] < 0 else maps[:, parents[segment]]
        anchor = joints[:, segment]
        placed = np.einsum("fij,fj->fi", parent_map[:, :, :2], anchor) + parent_map[:, :, 2]
        own = np.concatenate(
            [linear[:, segment], (placed - np.einsum("fij,fj->fi", linear[:, segment], anchor))[..., None]], -1
        )
        maps[:, segment] = np.where(present[:, segment, None, None], own, parent_map)
    return maps


def _render(labels: np.ndarray, maps: np.ndarray, box: np.ndarray) -> np.ndarray:
    """Warp one frame's segments [H, W] by their 2x3 maps [S, 2, 3], nearest sampling, back to front."""
    height, width = labels.shape
    out = np.zeros_like(labels)
    for segment in PAINT_ORDER:
        row0, row1, col0, col1 = box[segment]
        if row0 > row1:
            continue
        linear, shift = maps[segment, :, :2], maps[segment, :, 2]
        corners = np.array([[col0, row0], [col1 + 1, row0], [col0, row1 + 1], [col1 + 1, row1 + 1]], np.float64)
        mapped = corners @ linear.T + shift
        x0, y0 = np.floor(mapped.min(0)).astype(int).clip(0, [width, height])
        x1, y1 = np.ceil(mapped.max(0)).astype(int).clip(0, [width, height])
        if x0 >= x1 or y0 >= y1:
            continue
        inverse = np.linalg.inv(linear)
        qx = np.arange(x0, x1) + 0.5 - shift[0]
        qy = np.arange(y0, y1) + 0.5 - shift[1]
        sx = np.floor(inverse[0, 0] * qx[None, :] + inverse[0, 1] * qy[:, None]).astype(np.int64)
        sy = np.floor(inverse[1, 0] * qx[None, :] + inverse[1, 1] * qy[:, None]).astype(np.int64)
        inside = (sx >= col0) & (sx <= col1) & (sy >= row0) & (sy <= row1)
        sx, sy = np.where(inside, sx, col0), np.where(inside, sy, row0)
        sampled = labels[sy, sx]
        hit = inside & (_SEGMENT_OF_LABEL[sampled] == segment)
        np.copyto(out[y0:y1, x0:x1], sampled, where=hit)
    return out


def _render_global(frame: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """One frame [H, W] under one uniform 2x3 map (scale and shift), nearest sampling."""
    height, width = frame.shape
    scale, shift = affine[0, 0], affine[:, 2]
    cols = np.floor((np.arange(width) + 0.5 - shift[0]) / scale).astype(np.int64)
    rows = np.floor((np.arange(height) + 0.5 - shift[1]) / scale).astype(np.int64)
    col_ok, row_ok = (cols >= 0) & (cols < width), (rows >= 0) & (rows < height)
    out = frame[rows.clip(0, height - 1)[:, None], cols.clip(0, width - 1)[None, :]]
    return np.where(row_ok[:, None] & col_ok[None, :], out, 0).astype(frame.dtype)


def _check(reference: np.ndarray, motion: np.ndarray, mode: str, align_frame: int) -> None:
    if mode not in MODES:
        raise ValueError(f"unknown retarget mode {mode!r}; choose one of {', '.join(MODES)}")
    if reference.ndim != 2 or motion.ndim != 3:
        raise ValueError(
            f"expected reference part indices [H, W] and motion [F, H, W], got {reference.shape} and {motion.shape}"
        )
    if reference.shape != motion.shape[1:]:
        raise ValueError(
            f"reference is {reference.shape[1]}x{reference.shape[0]} but the motion frames are "
            f"{motion.shape[2]}x{motion.shape[1]}; resize (fit) the reference to the motion's size first"
        )
    if not 0 <= align_frame < max(motion.shape[0], 1):
        raise ValueError(f"align_frame {align_frame} is outside the motion's {motion.shape[0]} frames")


def _first_with_body(motion: np.ndarray, align_frame: int) -> int:
    """`align_frame`, or the first later frame showing body parts when it shows none (a person walking in)."""
    shown = np.flatnonzero(motion[align_frame:].reshape(motion.shape[0] - align_frame, -1).any(axis=1))
    if shown.size == 0:
        raise ValueError(
            f"no motion frame from align_frame {align_frame} on shows body parts (every pixel is DensePose "
            "background); check that the motion is a DensePose video of a person, or lower align_frame"
        )
    return align_frame + int(shown[0])


def retarget_labels(
    reference: np.ndarray,
    motion: np.ndarray,
    mode: str = "parts",
    *,
    align_frame: int = 0,
    progress: Callable[[int], None] | None = None,
) -> np.ndarray:
    """Motion part indices [F, H, W] uint8 moved onto the reference's body (`reference` [H, W] uint8).

    `mode`: `off` (unchanged copy), `global` or `parts` (module docstring). Fits use frame `align_frame`, or
    the first later frame showing body parts when it shows none.
    `progress(frames_done)` runs after each frame and may raise to cancel.
    """
    reference, motion = np.asarray(reference, np.uint8), np.asarray(motion, np.uint8)
    _check(reference, motion, mode, align_frame)
    out = motion.copy()
    if mode == "off" or motion.shape[0] == 0:
        if progress is not None and motion.shape[0]:
            progress(motion.shape[0])
        return out
    target = extent(reference, "the reference")
    align_frame = _first_with_body(motion, align_frame)
    source = extent(motion[align_frame], f"motion frame {align_frame}")
    scale = (target.bottom - target.top) / (source.bottom - source.top)
    base = _global_map(scale, source, target)
    if mode == "global":
        for index, frame in enumerate(motion):
            out[index] = _render_global(frame, base)
            if progress is not None:
                progress(index + 1)
        return out

    reference_bodies, align_bodies = measure(reference[None]), measure(motion[align_frame][None])
    parents = _parents(reference_bodies, align_bodies)
    scales = _part_scales(reference_bodies, align_bodies, parents, scale)

    def warp(frames: np.ndarray, offset: np.ndarray) -> list[np.ndarray]:
        bodies = measure(frames)
        maps = _part_maps(bodies, parents, scales, base, offset)
        return [_render(frames[i], maps[i], bodies.box[i]) for i in range(len(frames))]

    (placed,) = warp(motion[align_frame][None], np.zeros(2))
    landed = extent(placed, f"motion frame {align_frame} after retargeting") if placed.any() else target
    offset = np.array([target.centre_x - landed.centre_x, target.bottom - landed.bottom])
    for start in range(0, motion.shape[0], CHUNK):
        for index, frame in enumerate(warp(motion[start : start + CHUNK], offset), start):
            out[index] = frame
            if progress is not None:
                progress(index + 1)
    return out


LIMBS = (2, 3, 4, 5, 8, 9, 10, 11)  # upper arms, lower arms, upper legs, lower legs


def bone_lengths(labels: np.ndarray) -> np.ndarray:
    """Joint-to-joint length of each limb in LIMBS, [F, 8] pixels (nan where a joint is not visible)."""
    bodies = measure(np.asarray(labels, np.uint8))
    parents = _parents(bodies)
    joints = _joints(bodies, parents)
    lengths = np.full((len(bodies.count), len(LIMBS)), np.nan)
    for column, segment in enumerate(LIMBS):
        child = int(np.flatnonzero(parents == segment)[0])
        seen = bodies.contact[:, segment, child] > 0
        if segment not in UPPER_LIMBS:  # the upper limbs' proximal joint mirrors the distal one
            seen &= bodies.contact[:, segment, parents[segment]] > 0
        distance = np.linalg.norm(bodies.contact_point[:, segment, child] - joints[:, segment], axis=-1)
        lengths[:, column] = np.where(seen, distance, np.nan)
    return lengths


def reference_labels(estimator: Estimator, picture: np.ndarray) -> np.ndarray:
    """Part indices [H, W] of the most confident person in `picture` (uint8 RGB [H, W, 3]) with any part
    pixels (a detection whose parts all come out as background is skipped)."""
    [instances] = estimator.detect([picture])
    for index in range(len(instances)):
        labels = paint_labels(instances.select(slice(index, index + 1)))
        if labels.any():
            return labels
    raise ValueError(
        "no person found in the reference picture; use a photo that shows the whole body, or give a DensePose "
        "rendering of the reference instead (reference_densepose in ComfyUI, --reference-densepose on the "
        "command line)"
    )


def retarget_frames(
    reference: np.ndarray,
    frames: np.ndarray,
    mode: str = "parts",
    *,
    align_frame: int = 0,
    progress: Callable[[int], None] | None = None,
) -> np.ndarray:
    """Rendered DensePose frames (uint8 RGB [F, H, W, 3], viridis or parula-black, lossy or not) moved onto the
    body of `reference` (part indices [H, W]) and re-rendered with their own colormap.

    `progress(steps_done)` counts 2F steps (reading each frame's parts, then moving it) and may raise to cancel.
    """
    frames = np.asarray(frames)
    if len(frames) == 0:
        raise ValueError("the motion holds no frames: nothing to retarget")
    colormap = detect_colormap(frames[:: max(1, len(frames) // 8)])
    labels = np.empty(frames.shape[:3], np.uint8)
    exact = 0
    for index, frame in enumerate(frames):
        labels[index] = labels_from_rgb(frame, colormap)
        exact += int((palette(colormap)[labels[index]] == frame[..., :3]).all(-1).sum())
        if progress is not None:
            progress(index + 1)
    if exact < 0.99 * labels.size:
        log.warning(
            "%.0f %% of the motion's pixels are not exact DensePose colours (a lossy video?): neighbouring part "
            "colours get confused and retargeting is less accurate; connect 'Video to DensePose' directly or "
            "save DensePose videos as lossless FFV1 MKV",
            100 - 100 * exact / labels.size,
        )
    moved_progress = None if progress is None else (lambda done: progress(len(frames) + done))
    moved = retarget_labels(reference, labels, mode, align_frame=align_frame, progress=moved_progress)
    return colorize(moved, colormap)
