"""`python -m densepose_node extract VIDEO -o OUT.mp4`: a driving video -> a DensePose motion video;
`python -m densepose_node retarget --reference IMG --motion VIDEO -o OUT.mp4`: that motion on the reference's body.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from magicanimate_core.media.fit import fit_labels, square_label_fit
from magicanimate_core.media.frames import to_uint8
from magicanimate_core.media.images import read_image
from magicanimate_core.media.video_args import add_frame_selection_arguments, frame_selection
from magicanimate_core.media.video_io import read_video, write_video
from magicanimate_core.validation import finite_float

from .backends import BACKENDS, BackendUnavailable, load_estimator
from .extract import FITS, extract_densepose
from .labels import labels_from_rgb
from .render import COLORMAPS
from .retarget import MODES, reference_labels, retarget_frames
from .weights import WEIGHTS_FILENAME


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m densepose_node", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    extract = commands.add_parser("extract", help="render DensePose frames for every frame of a video")
    extract.add_argument("video", help="input video file")
    extract.add_argument("-o", "--output", required=True, help="output video; the format follows the suffix")
    extract.add_argument("--weights", required=True, help=f"DensePose weights ({WEIGHTS_FILENAME} or .safetensors)")
    extract.add_argument("--backend", choices=BACKENDS, default="auto")
    extract.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda")
    extract.add_argument("--score-threshold", type=finite_float, default=0.05, help="0.05 = vid2densepose")
    extract.add_argument("--max-people", type=int, default=0, help="keep the N most confident people (0 = all)")
    extract.add_argument("--colormap", choices=COLORMAPS, default="viridis")
    extract.add_argument("--fit", choices=FITS, default="source", help="source size, or a square by crop / pad")
    extract.add_argument("--size", type=int, default=512, help="side of the square output for crop / pad")
    extract.add_argument("--smooth", action="store_true", help="per-pixel label majority over +-1 frame")
    extract.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    add_frame_selection_arguments(extract.add_argument_group("video loading (as VideoHelperSuite's Load Video)"))
    add_retarget_parser(commands)
    return parser


def add_retarget_parser(commands: argparse._SubParsersAction) -> None:
    retarget = commands.add_parser(
        "retarget", help="move the body in a DensePose motion video onto the reference person's proportions"
    )
    reference = retarget.add_mutually_exclusive_group(required=True)
    reference.add_argument("--reference", help="photo of the person to animate (needs --weights)")
    reference.add_argument("--reference-densepose", help="a DensePose rendering of that person instead of a photo")
    retarget.add_argument("--motion", required=True, help="DensePose motion video (viridis or parula-black)")
    retarget.add_argument("-o", "--output", required=True, help="output video; the format follows the suffix")
    retarget.add_argument("--mode", choices=MODES, default="parts", help="parts (default), global, off")
    retarget.add_argument("--align-frame", type=int, default=0, help="motion frame that is measured and placed")
    retarget.add_argument(
        "--fit", choices=("crop", "pad", "stretch"), default="pad", help="how the reference reaches the motion's size"
    )
    retarget.add_argument("--weights", help=f"DensePose weights ({WEIGHTS_FILENAME} or .safetensors)")
    retarget.add_argument("--backend", choices=BACKENDS, default="auto")
    retarget.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda")
    retarget.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    add_frame_selection_arguments(retarget.add_argument_group("video loading (as VideoHelperSuite's Load Video)"))


def run_extract(args: argparse.Namespace) -> None:
    info, frames = read_video(args.video, hold_frames=False, **frame_selection(args))  # streamed frame by frame
    estimator = load_estimator(args.backend, args.weights, args.device, args.score_threshold)

    def progress(done: int) -> None:
        print(f"\r{estimator.name}: frame {done}", end="", file=sys.stderr, flush=True)

    rendered = extract_densepose(
        frames,
        estimator,
        colormap=args.colormap,
        max_people=args.max_people,
        fit_canvas=square_label_fit(args.fit, args.size),
        smooth=args.smooth,
        progress=progress,
    )
    path = write_video(args.output, rendered, info.output_fps, overwrite=args.overwrite)
    print(f"\nwrote {path}", file=sys.stderr)


def run_retarget(args: argparse.Namespace) -> None:
    if Path(args.output).exists() and not args.overwrite:
        raise FileExistsError(f"{args.output} exists; pass --overwrite to replace it or choose another --output")
    if args.reference and not args.weights:
        raise ValueError("--weights is needed to find the body parts in --reference (or give --reference-densepose)")
    info, frames = read_video(args.motion, **frame_selection(args))
    loaded = list(frames)
    if not loaded:
        raise ValueError(f"{args.motion}: no frames left after the loading options; check --skip-first-frames")
    motion = np.stack(loaded)
    if args.reference_densepose:
        labels = labels_from_rgb(to_uint8(read_image(args.reference_densepose)))
    else:
        estimator = load_estimator(args.backend, args.weights, args.device)
        labels = reference_labels(estimator, to_uint8(read_image(args.reference)))
    labels = fit_labels(labels, motion.shape[2], motion.shape[1], args.fit)

    def progress(done: int) -> None:
        print(f"\rretarget: step {done}/{2 * len(motion)}", end="", file=sys.stderr, flush=True)

    moved = retarget_frames(labels, motion, args.mode, align_frame=args.align_frame, progress=progress)
    path = write_video(args.output, moved, info.output_fps, overwrite=args.overwrite)
    print(f"\nwrote {path}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "retarget":
            run_retarget(args)
        else:
            run_extract(args)
    except (BackendUnavailable, FileNotFoundError, FileExistsError, ValueError) as error:  # WeightsError too
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0
