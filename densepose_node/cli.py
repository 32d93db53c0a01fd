"""`python -m densepose_node extract VIDEO -o OUT.mp4`: a driving video -> a DensePose motion video."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from magicanimate_core.media.fit import square_label_fit
from magicanimate_core.media.video_args import add_frame_selection_arguments, frame_selection
from magicanimate_core.media.video_io import read_video, write_video
from magicanimate_core.validation import finite_float

from .backends import BACKENDS, BackendUnavailable, load_estimator
from .extract import FITS, extract_densepose
from .render import COLORMAPS
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
    return parser


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


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        run_extract(args)
    except (BackendUnavailable, FileNotFoundError, FileExistsError, ValueError) as error:  # WeightsError too
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0
