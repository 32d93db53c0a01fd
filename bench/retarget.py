"""`python -m bench.retarget`: how well retargeting puts a motion onto a differently built reference body.

Synthetic capsule bodies (bench/bodies.py) of four builds; for each ordered pair (reference, motion) the motion
dances (limbs move, the pelvis walks) at another size and place. The ideal is the reference's build in each
motion pose, placed as `global` places the motion. Printed per mode (off / global / parts), averaged over
pairs and frames: silhouette IoU and mean per-part IoU against the ideal, and the bone-length ratio error
|retargeted / reference - 1| over the eight limb bones; then the CPU time per 512x512 frame on one thread (process
time, so a busy machine does not inflate it), and
the time and accuracy of reading part indices back from rendered frames (exact, and after H.264 at the
default quality).
"""

from __future__ import annotations

import argparse
import itertools
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from densepose_node.labels import labels_from_rgb
from densepose_node.render import colorize
from densepose_node.retarget import MODES, SEGMENT_LABELS, bone_lengths, retarget_labels
from magicanimate_core.media.video_io import read_video, write_video

from .bodies import BUILDS, Pose, clip, dance, draw, ideal

SIZE = (512, 512)


def silhouette_iou(a: np.ndarray, b: np.ndarray) -> float:
    """IoU of the body masks of two label maps, averaged over frames [F, H, W]."""
    a, b = a > 0, b > 0
    return float(np.mean((a & b).sum((1, 2)) / np.maximum((a | b).sum((1, 2)), 1)))


def part_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Mean over frames and body segments (present in either) of the segment masks' IoU."""
    scores = []
    for _, labels in SEGMENT_LABELS:
        ma, mb = np.isin(a, labels), np.isin(b, labels)
        union = (ma | mb).sum((1, 2))
        inter = (ma & mb).sum((1, 2))
        scores.append(np.where(union > 0, inter / np.maximum(union, 1), np.nan))
    return float(np.nanmean(np.stack(scores)))


def bone_error(out: np.ndarray, reference: np.ndarray) -> float:
    """Mean |bone length in `out` / in `reference` - 1| over limbs and frames where both are measurable."""
    ratio = bone_lengths(out) / bone_lengths(reference[None])
    return float(np.nanmean(np.abs(ratio - 1)))


def case(reference_build: str, motion_build: str, frames: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(reference [H, W], motion [F, H, W], ideal [F, H, W]) for one pair of builds."""
    reference_body = replace(BUILDS[reference_build], unit=300.0)
    motion_body = replace(BUILDS[motion_build], unit=230.0)
    reference = draw(reference_body, Pose((250.0, 250.0)), SIZE)
    poses = dance(frames, (190.0, 260.0), motion_body.unit)
    motion = clip(motion_body, poses, SIZE)
    return reference, motion, ideal(reference, reference_body, poses, motion[0])


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.retarget", description=__doc__)
    parser.add_argument("--frames", type=int, default=16, help="motion frames per pair (default 16)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    scores = {mode: [] for mode in MODES}
    seconds = {mode: 0.0 for mode in MODES}
    pairs = list(itertools.permutations(BUILDS, 2))
    for reference_build, motion_build in pairs:
        reference, motion, target = case(reference_build, motion_build, args.frames)
        for mode in MODES:
            start = time.process_time()
            out = retarget_labels(reference, motion, mode)
            seconds[mode] += time.process_time() - start
            scores[mode].append((silhouette_iou(out, target), part_iou(out, target), bone_error(out, reference)))
    frames = len(pairs) * args.frames
    print(f"{len(pairs)} reference/motion build pairs x {args.frames} frames, {SIZE[1]}x{SIZE[0]}, 1 thread")
    print(f"{'mode':<8} {'silhouette IoU':>15} {'mean part IoU':>14} {'bone ratio err':>15} {'CPU ms/frame':>13}")
    for mode in MODES:
        silhouette, parts, bones = np.mean(scores[mode], axis=0)
        print(f"{mode:<8} {silhouette:>15.3f} {parts:>14.3f} {bones:>15.3f} {1000 * seconds[mode] / frames:>13.1f}")
    lossy = []
    for reference_build, motion_build in pairs:
        reference, motion, target = case(reference_build, motion_build, args.frames)
        out = retarget_labels(reference, labels_from_rgb(h264(motion)), "parts")
        lossy.append((silhouette_iou(out, target), part_iou(out, target), bone_error(out, reference)))
    silhouette, parts, bones = np.mean(lossy, axis=0)
    print(f"{'parts, motion via H.264':<24} {silhouette:.3f} {parts:.3f} {bones:.3f}  (silhouette, part IoU, bones)")
    palette_round_trip(case("average", "stocky", args.frames)[1])


def h264(motion: np.ndarray) -> np.ndarray:
    """The viridis rendering of part indices [F, H, W] after an H.264 round trip at the default quality."""
    with tempfile.TemporaryDirectory() as folder:
        _, frames = read_video(write_video(Path(folder) / "motion.mp4", colorize(motion), 25))
        return np.stack(list(frames))


def palette_round_trip(motion: np.ndarray) -> None:
    """Print ms per frame and the share of right pixels (all, body) of `labels_from_rgb`, exact and H.264."""
    exact, lossy = colorize(motion), h264(motion)
    body = motion > 0
    for name, frames in (("exact", exact), ("H.264", lossy)):
        start = time.process_time()
        labels = np.stack([labels_from_rgb(frame, "viridis") for frame in frames])
        elapsed = 1000 * (time.process_time() - start) / len(frames)
        right = labels == motion
        print(f"palette inverse, {name:<6} {elapsed:6.1f} CPU ms/frame, {right.mean():.4f} of pixels right, "
              f"{right[body].mean():.4f} of body pixels")  # fmt: skip


if __name__ == "__main__":
    main()
