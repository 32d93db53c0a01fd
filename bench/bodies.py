"""Synthetic DensePose bodies: one capsule per part, labelled with DensePose indices, in a posable 2D skeleton.

Used by the retargeting tests and `python -m bench.retarget`. A `Build` holds proportions in units of the
body's `unit` (pixels); a `Pose` holds the pelvis position and absolute limb angles (0 = pointing down,
positive = towards image right). `draw(build, pose, size)` returns uint8 part indices [H, W], painted torso,
legs, head, arms (back to front), two-label segments split along their axis (front / back index).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from densepose_node.retarget import extent


@dataclass(frozen=True)
class Build:
    unit: float = 300.0  # pixels per body unit (about the body height)
    torso: float = 0.28
    torso_width: float = 0.085
    head: float = 0.065
    shoulder: float = 0.085
    hip: float = 0.045
    upper_arm: float = 0.16
    lower_arm: float = 0.14
    hand: float = 0.045
    arm_width: float = 0.03
    upper_leg: float = 0.23
    lower_leg: float = 0.22
    foot: float = 0.06
    leg_width: float = 0.04


@dataclass(frozen=True)
class Pose:
    root: tuple[float, float]  # pelvis (x, y) in pixels
    lean: float = 0.0
    arms: tuple[tuple[float, float, float], tuple[float, float, float]] = ((0.25, 0.25, 0.25), (-0.25, -0.25, -0.25))
    legs: tuple[tuple[float, float], tuple[float, float]] = ((0.06, 0.06), (-0.06, -0.06))


# DensePose indices per drawn part: (left side, right side); the left side is drawn on image right
ARM_LABELS = (((15, 17), (19, 21), (4,)), ((16, 18), (20, 22), (3,)))
LEG_LABELS = (((8, 10), (12, 14), (5,)), ((7, 9), (11, 13), (6,)))
BONES = ("upper_arm_left", "upper_arm_right", "lower_arm_left", "lower_arm_right",
         "upper_leg_left", "upper_leg_right", "lower_leg_left", "lower_leg_right")  # fmt: skip


def _direction(angle: float) -> np.ndarray:
    return np.array([math.sin(angle), math.cos(angle)])


def capsules(build: Build, pose: Pose) -> list[tuple[np.ndarray, np.ndarray, float, tuple[int, ...]]]:
    """(start, end, radius, labels) of every part in painting order, in pixels."""
    u = build.unit
    pelvis = np.asarray(pose.root, np.float64)
    up, side = -_direction(pose.lean), np.array([math.cos(pose.lean), -math.sin(pose.lean)])
    neck = pelvis + up * build.torso * u
    r_torso = build.torso_width * u
    parts = [(pelvis + up * 0.6 * r_torso, neck - up * 0.6 * r_torso, r_torso, (1, 2))]
    for sign, (upper, lower), labels in zip((1, -1), pose.legs, LEG_LABELS):
        hip = pelvis + sign * side * build.hip * u
        knee = hip + _direction(upper) * build.upper_leg * u
        ankle = knee + _direction(lower) * build.lower_leg * u
        toe = ankle + _direction(lower + sign * math.pi / 2) * build.foot * u
        width = build.leg_width * u
        parts += [
            (hip, knee, width, labels[0]),
            (knee, ankle, 0.85 * width, labels[1]),
            (ankle, toe, 0.5 * width, labels[2]),
        ]
    head = neck + up * 0.9 * build.head * u
    parts.append((head, head, build.head * u, (23, 24)))
    for sign, (upper, lower, hand), labels in zip((1, -1), pose.arms, ARM_LABELS):
        shoulder = neck - up * 0.15 * r_torso + sign * side * build.shoulder * u
        elbow = shoulder + _direction(upper) * build.upper_arm * u
        wrist = elbow + _direction(lower) * build.lower_arm * u
        tip = wrist + _direction(hand) * build.hand * u
        width = build.arm_width * u
        parts += [
            (shoulder, elbow, width, labels[0]),
            (elbow, wrist, 0.85 * width, labels[1]),
            (wrist, tip, width, labels[2]),
        ]
    return parts


def draw(build: Build, pose: Pose, size: tuple[int, int]) -> np.ndarray:
    """uint8 DensePose part indices [H, W] of `build` in `pose`."""
    height, width = size
    canvas = np.zeros(size, np.uint8)
    for start, end, radius, labels in capsules(build, pose):
        low = np.floor(np.minimum(start, end) - radius).astype(int).clip(0, [width, height])
        high = np.ceil(np.maximum(start, end) + radius + 1).astype(int).clip(0, [width, height])
        if (low >= high).any():
            continue
        x = np.arange(low[0], high[0]) + 0.5
        y = (np.arange(low[1], high[1]) + 0.5)[:, None]
        axis = end - start
        t = ((x - start[0]) * axis[0] + (y - start[1]) * axis[1]) / max(float(axis @ axis), 1e-9)
        t = t.clip(0, 1)
        inside = (x - start[0] - t * axis[0]) ** 2 + (y - start[1] - t * axis[1]) ** 2 <= radius**2
        label = np.full(inside.shape, labels[0], np.uint8)
        if len(labels) > 1:
            side = axis[0] * (y - start[1]) - axis[1] * (x - start[0])
            label = np.where(side > 0, labels[1], labels[0]).astype(np.uint8)
        region = canvas[low[1] : high[1], low[0] : high[0]]
        np.copyto(region, label, where=inside)
    return canvas


def dance(frames: int, root: tuple[float, float], unit: float, travel: float = 0.004) -> list[Pose]:
    """A clip of poses: arms wave up and bend, legs step, the pelvis walks right by `travel` units a frame."""
    poses = []
    for t in range(frames):
        phase = 2 * math.pi * t / max(frames, 8)
        wave = 0.5 - 0.5 * math.cos(phase)
        step = math.sin(phase)
        arms = (
            (0.3 + 1.3 * wave, 0.3 + 2.0 * wave, 0.3 + 2.2 * wave),
            (-0.3 - 0.6 * wave, -0.3 - 0.2 * wave, -0.3 - 0.2 * wave),
        )
        legs = ((0.08 + 0.3 * step, 0.08 + 0.3 * step - 0.3 * max(step, 0)), (-0.08 - 0.3 * step, -0.08 - 0.3 * step))
        x = root[0] + travel * unit * t
        y = root[1] - 0.01 * unit * abs(step)
        poses.append(Pose((x, y), 0.05 * step, arms, legs))
    return poses


def scaled(pose: Pose, origin: tuple[float, float], factor: float, shift: tuple[float, float]) -> Pose:
    """`pose` with its pelvis moved to origin + factor * (pelvis - origin) + shift (angles kept)."""
    x, y = pose.root
    return replace(pose, root=(origin[0] + factor * (x - origin[0]) + shift[0],
                               origin[1] + factor * (y - origin[1]) + shift[1]))  # fmt: skip


BUILDS = {
    "average": Build(),
    "long-limbed": Build(torso=0.26, torso_width=0.07, upper_arm=0.19, lower_arm=0.17, upper_leg=0.28,
                         lower_leg=0.27, arm_width=0.025, leg_width=0.035),
    "stocky": Build(torso=0.30, torso_width=0.11, shoulder=0.1, hip=0.055, upper_arm=0.13, lower_arm=0.12,
                    upper_leg=0.18, lower_leg=0.17, arm_width=0.04, leg_width=0.055),
    "child": Build(torso=0.24, torso_width=0.08, head=0.09, upper_arm=0.12, lower_arm=0.11, upper_leg=0.17,
                   lower_leg=0.16, hand=0.035, foot=0.045),
}  # fmt: skip


def clip(build: Build, poses: list[Pose], size: tuple[int, int]) -> np.ndarray:
    """uint8 part indices [F, H, W] of `build` in each pose."""
    return np.stack([draw(build, pose, size) for pose in poses])


def ideal(reference: np.ndarray, build: Build, poses: list[Pose], motion_first: np.ndarray) -> np.ndarray:
    """The reference's `build` in the motion's `poses`, placed as `global` retargeting places the motion.

    Travel is scaled by the ratio of body heights (reference over `motion_first`); the first frame's feet sit on
    the reference's lowest row and its centre on the reference's centre.
    """
    target, source = extent(reference, "reference"), extent(motion_first, "motion")
    factor = (target.bottom - target.top) / (source.bottom - source.top)
    moved = [scaled(pose, poses[0].root, factor, (0.0, 0.0)) for pose in poses]
    first = extent(draw(build, moved[0], reference.shape), "ideal")
    shift = (target.centre_x - first.centre_x, target.bottom - first.bottom)
    return clip(build, [scaled(pose, poses[0].root, 1.0, shift) for pose in moved], reference.shape)
