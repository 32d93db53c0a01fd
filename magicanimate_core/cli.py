"""`python -m magicanimate_core`: animate without ComfyUI, download models, convert the temporal checkpoint.

Models are found in a ComfyUI-style models folder (`--models-dir`, or $MAGICANIMATE_MODELS_DIR):
`<dir>/magicanimate/<model>/...` as listed in docs/models.md, `<dir>/densepose/model_final_162be9.pkl` for
`--extract-densepose`, single-file checkpoints in `<dir>/checkpoints/` and `<dir>/vae/`. Nothing is
downloaded unless `--download` (or the `download` command) asks for it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import registry
from .devices import DTYPE_CHOICES, parse_devices, resolve_dtype
from .distributed import RankFailed, WindowShare
from .download import DownloadError, ModelsUnavailableError, TextProgressBar, download_all
from .media.motion_fit import MOTION_FITS
from .media.video_args import add_frame_selection_arguments, frame_selection
from .options import WINDOW_WEIGHTINGS, SamplingOptions, Speedups
from .scheduling import SCHEDULERS
from .validation import finite_float
from .verify import verify_command

MODELS_DIR_ENV = "MAGICANIMATE_MODELS_DIR"
Subcommands = argparse._SubParsersAction  # what `add_subparsers` returns


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m magicanimate_core",
        description="MagicAnimate: animate a reference image along a DensePose video, without ComfyUI.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_animate_command(commands)
    _add_download_command(commands)
    _add_convert_temporal_command(commands)
    _add_list_models_command(commands)
    _add_verify_command(commands)
    return parser


def _add_animate_command(commands: Subcommands) -> None:
    """`animate`: inputs, output, sampling, size, frame selection and runtime options."""
    animate = commands.add_parser(
        "animate",
        help="animate a reference image along a motion video",
        description="Animate a reference image along a DensePose (or any, with "
        "--extract-densepose) video and write the result; the format follows the "
        "output suffix: .mp4 (H.264), .webm, .gif, .webp, .mkv (lossless FFV1).",
    )
    _add_models_args(animate)
    animate.add_argument("--reference", required=True, type=Path, help="reference image (PNG, JPEG, ...)")
    animate.add_argument(
        "--motion",
        required=True,
        type=Path,
        help="DensePose video driving the motion (any video with --extract-densepose)",
    )
    animate.add_argument(
        "--output",
        required=True,
        type=Path,
        help="output video; the suffix picks the format (.mp4 .webm .gif .webp .mkv)",
    )
    animate.add_argument("--overwrite", action="store_true", help="replace the output file if it exists")
    animate.add_argument(
        "--quality",
        type=int,
        default=None,
        help="encoder quality 0..100, higher is better (default: the writer's; ignored by GIF and lossless MKV)",
    )
    animate.add_argument(
        "--fps", type=finite_float, default=25.0, help="output frame rate (default 25, as the original)"
    )
    animate.add_argument(
        "--extract-densepose",
        action="store_true",
        help="run DensePose on --motion first (needs densepose/model_final_162be9.pkl)",
    )
    animate.add_argument(
        "--densepose-backend",
        choices=("auto", "builtin", "detectron2"),
        default="auto",
        help="DensePose implementation for --extract-densepose (default auto)",
    )
    animate.add_argument(
        "--retarget",
        choices=("off", "global", "parts"),
        default="off",
        help="fit the motion's body to the reference person's, found with densepose/model_final_162be9.pkl: "
        "global = body height and placement, parts = also each limb's proportions (default off)",
    )
    _add_sampling_arguments(animate)
    _add_size_arguments(animate)
    add_frame_selection_arguments(animate.add_argument_group("motion video loading (as VideoHelperSuite's Load Video)"))
    _add_runtime_arguments(animate)


def _add_sampling_arguments(animate: argparse.ArgumentParser) -> None:
    """The sampler's options, as the nodes expose them."""
    sampling = animate.add_argument_group("sampling (same options as the nodes)")
    sampling.add_argument("--seed", type=int, default=1, help="seed of the initial noise (default 1)")
    sampling.add_argument(
        "--noise",
        type=Path,
        default=None,
        help="explicit initial noise: a .safetensors file holding one tensor [K,4,H/8,W/8], "
        "tiled along the frames with period K (overrides --seed)",
    )
    sampling.add_argument("--steps", type=int, default=25, help="DDIM denoising steps (default 25)")
    sampling.add_argument(
        "--guidance-scale", type=finite_float, default=7.5, help="classifier-free guidance scale (default 7.5)"
    )
    sampling.add_argument("--context-frames", type=int, default=16, help="frames per context window (default 16)")
    sampling.add_argument(
        "--context-overlap", type=int, default=4, help="frames shared by neighbouring windows (default 4)"
    )
    sampling.add_argument(
        "--scheduler", choices=SCHEDULERS, default="ddim", help="ddim (as released) or dpmpp (DPM-Solver++ 2M)"
    )
    sampling.add_argument(
        "--window-weighting",
        choices=tuple(WINDOW_WEIGHTINGS),
        default="uniform",
        help="merge overlapping windows by plain average (uniform, as released) or favour their centres (pyramid)",
    )
    loop = sampling.add_mutually_exclusive_group()
    loop.add_argument(
        "--closed-loop",
        dest="closed_loop",
        action="store_true",
        default=True,
        help="the last window wraps around to the first frames (default, as released)",
    )
    loop.add_argument("--open-loop", dest="closed_loop", action="store_false", help="windows do not wrap around")
    sampling.add_argument(
        "--guidance-until",
        type=finite_float,
        default=1.0,
        help="fraction of the steps that use classifier-free guidance (default 1.0 = all)",
    )
    sampling.add_argument(
        "--deep-feature-reuse",
        type=int,
        default=0,
        metavar="N",
        help="recompute the deep UNet features every N steps, reuse them in between (faster, changes the "
        "result; default 0 = every step, as released)",
    )


def _add_size_arguments(animate: argparse.ArgumentParser) -> None:
    """Working size and how reference and motion reach it."""
    size = animate.add_argument_group("size")
    size.add_argument("--size", type=int, default=512, help="square working size in pixels (default 512)")
    size.add_argument("--width", type=int, default=None, help="working width, overrides --size (multiple of 8)")
    size.add_argument("--height", type=int, default=None, help="working height, overrides --size (multiple of 8)")
    size.add_argument(
        "--fit",
        choices=("crop", "pad", "stretch", "none"),
        default="pad",
        help="how reference and motion frames reach the working size: crop (cover, centre "
        "crop), pad (edge-pad to the aspect ratio; default), stretch, none (keep as is)",
    )
    size.add_argument(
        "--motion-fit",
        choices=MOTION_FITS,
        default=None,
        help="how the motion reaches the reference's size when they differ (nearest neighbour, pad with the "
        "background colour; default: --fit, or stretch with --fit none)",
    )
    size.add_argument(
        "--crop-to-reference",
        action="store_true",
        help="cut the padding --fit pad added back off the output, so a portrait photo stays a portrait",
    )


def _add_runtime_arguments(animate: argparse.ArgumentParser) -> None:
    """Device, precision, downloads and memory levers."""
    runtime = animate.add_argument_group("runtime")
    runtime.add_argument(
        "--device", default="auto", help="torch device: auto (cuda if available), cpu, cuda, cuda:1 ..."
    )
    runtime.add_argument(
        "--devices",
        default="",
        help="share the windows between several GPUs of this machine from one process, e.g. cuda:0,cuda:1 "
        "(same output; the first decodes; replaces --device; for several machines use torchrun, docs/scaling.md)",
    )
    runtime.add_argument(
        "--dtype", choices=DTYPE_CHOICES, default="auto", help="weights precision (auto: fp16 on GPU, fp32 on CPU)"
    )
    runtime.add_argument(
        "--download", action="store_true", help="download missing model files first (only those needed)"
    )
    runtime.add_argument(
        "--sequential-cfg",
        action="store_true",
        help="memory lever: run the two guidance halves one after the other (same output, less GPU memory)",
    )
    runtime.add_argument(
        "--offload",
        action="store_true",
        help="memory lever: keep each model on the GPU only while it runs (same output, slower)",
    )
    runtime.add_argument(
        "--decode-batch-size",
        type=int,
        default=None,
        help="frames per VAE decode call (1 = least memory; default: the device's, 1 on CPU, 8 on CUDA)",
    )
    runtime.add_argument(
        "--decode-threads",
        type=int,
        default=1,
        help="CPU: decode this many frames at once, one per thread, with Winograd convolutions (faster, more RAM)",
    )


def _add_download_command(commands: Subcommands) -> None:
    """`download`: fetch the registered model files."""
    download = commands.add_parser(
        "download",
        help="download the model files into the models folder",
        description="Download only the files MagicAnimate needs, with resume and "
        "sha256 checks. Already present files are skipped.",
    )
    _add_models_args(download)
    download.add_argument(
        "--densepose", action="store_true", help="also download the DensePose R-CNN weights (for --extract-densepose)"
    )
    download.add_argument(
        "--endpoint",
        default=None,
        help="Hugging Face mirror base URL (default: $MAGICANIMATE_HF_ENDPOINT, $HF_ENDPOINT "
        "or https://huggingface.co)",
    )


def _add_convert_temporal_command(commands: Subcommands) -> None:
    """`convert-temporal`: the one-time temporal checkpoint conversion."""
    convert = commands.add_parser(
        "convert-temporal",
        help="convert temporal_attention.ckpt to a faster, safe .safetensors overlay",
        description="One-time conversion of the 5 GB temporal_attention.ckpt pickle "
        "to temporal_attention.safetensors beside it; loaders prefer it.",
    )
    _add_models_args(convert)


def _add_list_models_command(commands: Subcommands) -> None:
    """`list-models`: the model folders and their missing files."""
    listing = commands.add_parser(
        "list-models",
        help="list model folders and which files are present",
        description="Show every model folder under <models-dir>/magicanimate and the registered files each one lacks.",
    )
    _add_models_args(listing, single_files=False)


def _add_verify_command(commands: Subcommands) -> None:
    """`verify`: check model files against the published sizes and hashes."""
    verify = commands.add_parser(
        "verify",
        help="check the model files on disk against the published sizes and sha256",
        description="Check every registered file of every model folder (or --model) and the DensePose weights: "
        "size first, then sha256. Prints ok / missing / size mismatch / hash mismatch / unpinned per file; "
        "exits with status 1 if any file mismatches.",
    )
    _add_models_args(verify, single_files=False)


def _add_models_args(parser: argparse.ArgumentParser, single_files: bool = True) -> None:
    group = parser.add_argument_group("models")
    group.add_argument(
        "--models-dir",
        type=Path,
        default=os.environ.get(MODELS_DIR_ENV),
        help=f"ComfyUI models folder (default ${MODELS_DIR_ENV})",
    )
    group.add_argument(
        "--model",
        default=None,
        help="folder under <models-dir>/magicanimate/ (default: the only or first one; "
        f"'{registry.default_model_name()}' when downloading into an empty folder)",
    )
    if single_files:
        group.add_argument(
            "--sd15-checkpoint",
            default=None,
            help="use this SD1.5 single-file checkpoint (path, or a name in <models-dir>/checkpoints) "
            "instead of the stable-diffusion-v1-5 folder",
        )
        group.add_argument(
            "--vae",
            default=None,
            help="use this VAE file (path, or a name in <models-dir>/vae) instead of sd-vae-ft-mse",
        )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.models_dir is None:
            raise ValueError(f"no models folder: pass --models-dir DIR (ComfyUI/models) or set ${MODELS_DIR_ENV}")
        handler = {
            "animate": animate,
            "download": download,
            "convert-temporal": convert_temporal,
            "list-models": list_models,
            "verify": verify_command,
        }[args.command]
        return handler(args)
    except (DownloadError, FileNotFoundError, ValueError, KeyboardInterrupt, RankFailed) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


def model_name(models_dir: Path, requested: str | None) -> str:
    if requested:
        return requested
    root = models_dir / "magicanimate"
    found = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    return found[0] if found else registry.default_model_name()


def _single_file(models_dir: Path, value: str | None, folder: str) -> Path | None:
    if value is None:
        return None
    path = Path(value)
    if not path.is_file() and (models_dir / folder / value).is_file():
        path = models_dir / folder / value
    if not path.is_file():
        raise FileNotFoundError(f"{value}: not a file, nor in {models_dir / folder}")
    return path


def _needed(args: argparse.Namespace) -> tuple[registry.ModelFile, ...]:
    names = [
        c
        for c in registry.MAGICANIMATE_COMPONENTS
        if not (c == "sd15" and getattr(args, "sd15_checkpoint", None))
        and not (c == "vae" and getattr(args, "vae", None))
    ]
    retarget = getattr(args, "retarget", "off") != "off"
    if getattr(args, "extract_densepose", False) or getattr(args, "densepose", False) or retarget:
        names.append("densepose_rcnn")
    return registry.files_for(names)


def ensure_models(args: argparse.Namespace, name: str, fetch: bool) -> None:
    """Download missing files when `fetch`, else raise the error listing files, URLs and folder."""
    missing = registry.missing_files(_needed(args), args.models_dir, name)
    if not missing:
        return
    if fetch:
        download_all(
            missing, args.models_dir, name, hf_endpoint=getattr(args, "endpoint", None), progress=TextProgressBar()
        )
        return
    raise ModelsUnavailableError(
        [(f, f.source_url(), f.target_path(args.models_dir, name)) for f in missing], args.models_dir, None
    )


def download(args: argparse.Namespace) -> int:
    name = model_name(args.models_dir, args.model)
    missing = registry.missing_files(_needed(args), args.models_dir, name)
    ensure_models(args, name, fetch=True)
    print(f"{len(missing)} file(s) downloaded; models in {args.models_dir / 'magicanimate' / name}", file=sys.stderr)
    return 0


def list_models(args: argparse.Namespace) -> int:
    root = args.models_dir / "magicanimate"
    names = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    if not names:
        print(f"no model folders in {root}")
    for name in names:
        missing = registry.missing_files(registry.files_for(registry.MAGICANIMATE_COMPONENTS), args.models_dir, name)
        state = "complete" if not missing else "missing: " + ", ".join(f.id for f in missing)
        print(f"{name}: {state}")
    return 0


def convert_temporal(args: argparse.Namespace) -> int:
    from .loading import SD15_DIR, TEMPORAL_CKPT, TEMPORAL_DIR, first_existing, read_state_dict
    from .temporal_weights import convert_temporal_ckpt

    model_dir = args.models_dir / "magicanimate" / model_name(args.models_dir, args.model)
    ckpt = model_dir / TEMPORAL_DIR / TEMPORAL_CKPT
    if not ckpt.is_file():
        raise FileNotFoundError(f"{ckpt}: temporal_attention.ckpt not found; download it first")
    sd15_file = _single_file(args.models_dir, args.sd15_checkpoint, "checkpoints")
    if sd15_file is not None:
        from .single_file import load_sd15_single_file

        sd15 = load_sd15_single_file(sd15_file).unet_state_dict
    else:
        unet_dir = model_dir / SD15_DIR / "unet"
        weights = first_existing(unet_dir, ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin"))
        if weights is None:
            raise FileNotFoundError(f"{unet_dir}: no SD1.5 UNet weights to compare against; pass --sd15-checkpoint")
        sd15 = read_state_dict(weights)
    out = convert_temporal_ckpt(ckpt, sd15)
    print(f"wrote {out} ({out.stat().st_size / 1e9:.2f} GB)", file=sys.stderr)
    return 0


def _pick_device_dtype(device: str, dtype: str) -> tuple[torch.device, torch.dtype]:
    chosen = torch.device(
        "cuda" if device == "auto" and torch.cuda.is_available() else "cpu" if device == "auto" else device
    )
    return chosen, resolve_dtype(dtype, chosen)


def _speedups(args: argparse.Namespace, device: torch.device) -> Speedups:
    """The device's speed-up defaults with the memory levers given on the command line (as the nodes do)."""
    levers = {"sequential_cfg": args.sequential_cfg, "offload": args.offload}
    if args.decode_batch_size is not None:
        levers["decode_batch_size"] = args.decode_batch_size
    if args.decode_threads > 1:
        levers["decode_threads"] = args.decode_threads
    return dataclasses.replace(Speedups.for_device(device), **levers)


def _read_noise(path: Path) -> torch.Tensor:
    from safetensors.torch import load_file

    tensors = load_file(str(path))
    if len(tensors) != 1:
        raise ValueError(
            f"{path} holds {len(tensors)} tensors ({sorted(tensors)}); --noise needs exactly one [K,4,H/8,W/8]"
        )
    noise = next(iter(tensors.values()))
    if noise.ndim != 4 or noise.shape[1] != 4:
        raise ValueError(f"{path}: noise shape {list(noise.shape)}; --noise needs [K,4,H/8,W/8]")
    return noise


def _motion_frames(args: argparse.Namespace, device: torch.device) -> Iterator[np.ndarray]:
    from .media.video_io import read_video

    _, frames = read_video(args.motion, hold_frames=False, **frame_selection(args))  # held only once fitted
    return _extract(args, device, frames) if args.extract_densepose else frames


def _extract(args: argparse.Namespace, device: torch.device, frames: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
    from densepose_node.backends import load_estimator
    from densepose_node.extract import extract_densepose

    return extract_densepose(frames, load_estimator(args.densepose_backend, _densepose_weights(args), device))


def _extract_on_ranks(
    args: argparse.Namespace, share: WindowShare, name: str, device: torch.device
) -> list[np.ndarray]:
    """--extract-densepose under torchrun: each rank extracts a share of the frames; rank 0 gets them all."""
    from .distributed_extract import extract_on_ranks
    from .media.video_io import read_video

    share.from_leader(lambda: ensure_models(args, name, fetch=args.download))  # the weights, for every rank
    return extract_on_ranks(
        share,
        lambda: read_video(args.motion, hold_frames=False, **frame_selection(args))[1],
        lambda frames: _extract(args, device, frames),
    )


def _densepose_weights(args: argparse.Namespace) -> Path:
    folder = args.models_dir / "densepose"
    weights = next(
        (folder / n for n in ("model_final_162be9.safetensors", "model_final_162be9.pkl") if (folder / n).is_file()),
        None,
    )
    if weights is None:
        raise FileNotFoundError(f"{folder}/model_final_162be9.pkl not found; run with --download or see docs/models.md")
    return weights


def _retarget(
    args: argparse.Namespace, reference: torch.Tensor, motion: torch.Tensor, device: torch.device
) -> torch.Tensor:
    """--retarget: the DensePose motion moved onto the reference person's body (densepose_node, lazily)."""
    from densepose_node.backends import load_estimator
    from densepose_node.retarget import reference_labels, retarget_frames

    from .media.frames import from_uint8, to_uint8

    estimator = load_estimator(args.densepose_backend, _densepose_weights(args), device)
    target = reference_labels(estimator, to_uint8(reference))
    return from_uint8(retarget_frames(target, to_uint8(motion), args.retarget))


def animate(args: argparse.Namespace) -> int:
    """`animate`; under torchrun every rank runs it and the ranks share the windows (see distributed.py)."""
    devices = parse_devices(args.devices)
    device, dtype = _pick_device_dtype(str(devices[0]) if devices else args.device, args.dtype)
    share, device = WindowShare.from_environment(device)
    try:
        if devices and share.parallel:  # every rank stops here alike
            raise ValueError(
                "--devices runs one process on several GPUs; under torchrun each rank has its own: drop it"
            )
        with share.together():
            code = _animate_on_rank(args, share, device, dtype)
        share.agree()  # every rank ends with the leader's outcome: the output written, or its error
        return code
    finally:
        share.close()


def _leader_inputs(
    args: argparse.Namespace, name: str, device: torch.device, extracted: list[np.ndarray] | None = None
) -> tuple[Any, ...]:
    """Rank 0's part: check the paths, fetch missing models, read and fit the reference, motion and noise.

    `extracted`: the DensePose motion the ranks extracted together (torchrun), instead of extracting here.
    """
    from .media.fit import fit_image
    from .media.frames import from_uint8
    from .media.images import read_image
    from .media.motion_fit import ContentRegion, fit_motion

    for given in (args.reference, args.motion):
        if not given.is_file():
            raise FileNotFoundError(f"{given}: no such file")
    if args.output.exists() and not args.overwrite:
        raise ValueError(f"{args.output} exists; pass --overwrite to replace it or choose another --output")
    ensure_models(args, name, fetch=args.download)
    width, height = args.width or args.size, args.height or args.size

    photo = torch.from_numpy(read_image(args.reference)[..., :3])
    reference = fit_image(photo, width, height, args.fit)
    content = ContentRegion.of_fit(photo.shape[0], photo.shape[1], width, height, args.fit)
    motion_fit = args.motion_fit or (args.fit if args.fit in MOTION_FITS else "stretch")
    motion_frames = [
        fit_motion(from_uint8([f]), reference.shape[1], reference.shape[0], motion_fit)[0]
        for f in (_motion_frames(args, device) if extracted is None else extracted)
    ]
    if not motion_frames:
        raise ValueError(f"{args.motion}: no frames left after the loading options; check --skip-first-frames")
    motion = torch.stack(motion_frames)
    if args.retarget != "off":
        motion = _retarget(args, reference, motion, device)
    noise = _read_noise(args.noise) if args.noise is not None else None
    return reference, content, motion_fit, motion, noise


def _animate_on_rank(args: argparse.Namespace, share: WindowShare, device: torch.device, dtype: torch.dtype) -> int:
    from .local_devices import animate_on_devices, pipelines_for
    from .media.frames import to_uint8
    from .media.motion_fit import crop_to_content
    from .media.video_io import write_video
    from .pipeline import MagicAnimatePipeline

    name = model_name(args.models_dir, args.model)
    sd15 = _single_file(args.models_dir, args.sd15_checkpoint, "checkpoints")
    vae = _single_file(args.models_dir, args.vae, "vae")
    extracted = _extract_on_ranks(args, share, name, device) if args.extract_densepose and share.parallel else None
    inputs = share.from_leader(lambda: _leader_inputs(args, name, device, extracted))
    reference, content, motion_fit, motion, noise = inputs
    if not share.leader:
        ensure_models(args, name, fetch=False)  # rank 0 has fetched what was missing

    sampling = SamplingOptions(
        closed_loop=args.closed_loop,
        window_weighting=WINDOW_WEIGHTINGS[args.window_weighting],
        scheduler=args.scheduler,
        guidance_until=args.guidance_until,
        deep_feature_reuse=args.deep_feature_reuse,
    )
    pipe = MagicAnimatePipeline.from_pretrained(
        args.models_dir / "magicanimate" / name, device=device, dtype=dtype, sd15_checkpoint=sd15, vae_path=vae
    )
    bar = StepBar() if share.leader else None
    call = dict(
        seed=args.seed,
        noise=noise,
        num_inference_steps=args.steps,
        guidance_scale=args.guidance_scale,
        context_frames=args.context_frames,
        context_overlap=args.context_overlap,
        callback=bar,
        options=sampling,
        speedups=_speedups(args, device),
    )
    devices = parse_devices(args.devices)
    if devices:
        frames = animate_on_devices(pipelines_for(pipe, devices), reference, motion, **call)
    else:
        frames = pipe(reference, motion, **call, share=share)
    if bar is None:  # another rank: rank 0 decodes and writes
        return 0
    bar.close()
    if args.crop_to_reference:
        frames = crop_to_content(frames, content)
    settings = {
        "seed": args.seed,
        "noise": str(args.noise) if args.noise else None,
        "steps": args.steps,
        "guidance_scale": args.guidance_scale,
        "context_frames": args.context_frames,
        "context_overlap": args.context_overlap,
        "model": name,
        "fit": args.fit,
        "motion_fit": motion_fit,
        "options": list(sampling.changed),
    }
    extra = {} if args.quality is None else {"quality": args.quality}
    uint8 = (to_uint8(frame) for frame in frames)
    out = write_video(
        args.output,
        uint8,
        args.fps,
        metadata={"comment": "MagicAnimate " + json.dumps(settings)},
        overwrite=args.overwrite,
        **extra,
    )
    ranks = f", {share.world_size} ranks" if share.parallel else f", {len(devices)} devices" if devices else ""
    print(f"wrote {out} ({len(frames)} frames at {args.fps:g} fps{ranks})", file=sys.stderr)
    return 0


class StepBar:
    """Denoising progress on stderr, fed by the pipeline's StepInfo callback."""

    def __init__(self, width: int = 30) -> None:
        self.width = width

    def __call__(self, info) -> None:  # type: ignore[no-untyped-def]
        filled = int(self.width * info.progress)
        sys.stderr.write(
            f"\ranimate [{'#' * filled}{'.' * (self.width - filled)}] "
            f"step {min(info.step + 1, info.num_steps)}/{info.num_steps}"
        )
        sys.stderr.flush()

    def close(self) -> None:
        sys.stderr.write("\n")
