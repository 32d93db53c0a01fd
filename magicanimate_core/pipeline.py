"""MagicAnimatePipeline: reference image + DensePose motion frames -> animated frames.

The denoising loop follows the original `AnimationPipeline.__call__`: DDIM, classifier-free guidance
"without vs with the reference", windows of 16 frames overlapping by 4 in a closed loop, averaged by
count, guidance applied after averaging. It differs only in work that cannot change the result: the
appearance encoder runs at batch 1, unconditional rows skip the reference attention they would discard,
ControlNet residuals live only as long as a window needs them, and only the kept frames are decoded.
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from diffusers import SchedulerMixin
from torch import nn

from . import parallel_decode
from .context import WindowPlan
from .control_cache import (
    CPU_CONDITIONING_CACHE_BYTES,
    ComputeResiduals,
    ConditioningEmbeddings,
    ControlResidualCache,
)
from .distributed import RankFailed, WindowShare
from .loading import MagicAnimateModels, load_models
from .memory import (
    check_fits,
    estimate_device_bytes,
    kept_feature_rows,
    return_freed_host_memory,
    return_freed_host_memory_before,
    vae_decode_bytes,
)
from .models import MAX_FRAMES, ReferenceBank, install_fast_paths, install_plain_processors, install_readers
from .models.unet3d import DeepFeatureReuse
from .noise import NOISE_FRAMES, draw_noise, tile_noise
from .options import CHANNELS_LAST_MODELS, SamplingOptions, Speedups
from .preprocess import padded_length
from .scheduling import make_scheduler
from .validation import check_finite

__all__ = ["MagicAnimatePipeline", "SamplingOptions", "Speedups", "StepInfo"]

VAE_SCALING = 0.18215


@dataclass(frozen=True)
class StepInfo:
    """Progress report passed to the callback after every UNet call; raise from the callback to cancel."""

    step: int  # 0-based denoising step
    num_steps: int
    call: int  # UNet calls finished in this step; equals num_calls once the step is complete
    num_calls: int
    latents: torch.Tensor | None = None  # the step's result `[1, 4, N, h, w]`, set once it is complete
    denoised: torch.Tensor | None = None  # the scheduler's estimate of the clean latents (pred_original_sample)

    @property
    def progress(self) -> float:
        return (self.step + self.call / self.num_calls) / self.num_steps


@dataclass(frozen=True)
class _Run:
    """What every denoising step of one call reads: inputs, shared conditioning and switches."""

    motion: torch.Tensor  # [F, H, W, 3] DensePose frames in [0, 1]
    num_padded: int  # frames denoised: F padded to a multiple of 16 by repeating the last frame
    text: torch.Tensor  # [1, 77, D] empty-prompt embedding
    reference_latent: torch.Tensor  # [1, 4, h, w]
    speedups: Speedups
    callback: Callable[[StepInfo], None] | None
    num_steps: int
    embeddings: ConditioningEmbeddings | None  # ControlNet's, kept across steps (CPU), else None

    @property
    def num_frames(self) -> int:
        return self.motion.shape[0]


class MagicAnimatePipeline:
    """Animate a reference image along a DensePose motion sequence (see `__call__`)."""

    def __init__(self, models: MagicAnimateModels) -> None:
        self.models = models
        self.reference_state = install_readers(models.unet)
        install_plain_processors(models.controlnet)  # its text rows are one broadcast embedding
        for model in (models.vae, models.controlnet, models.appearance_encoder):
            install_fast_paths(model)  # the UNet3D installs its own
        # On a CPU, the run's memory peaks in the UNet's up path and the decoder's full-resolution block.
        return_freed_host_memory_before([*models.unet.up_blocks[1:], models.vae.decoder.up_blocks[-1]])
        self.execution_device = models.unet.conv_in.weight.device
        self._text_embedding: torch.Tensor | None = None
        self._channels_last: frozenset[str] = frozenset()  # models converted to NHWC memory
        self._compiled_unet: nn.Module | None = None
        self.deep_features = DeepFeatureReuse(every=1)  # set per call from `SamplingOptions.deep_feature_reuse`

    @classmethod
    def from_pretrained(
        cls,
        model_dir: str | Path,
        *,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
        sd15_checkpoint: str | Path | None = None,
        vae_path: str | Path | None = None,
    ) -> MagicAnimatePipeline:
        models = load_models(model_dir, sd15_checkpoint=sd15_checkpoint, vae_path=vae_path, dtype=dtype)
        return cls(models).to(device)

    @property
    def device(self) -> torch.device:
        return self.execution_device

    @property
    def dtype(self) -> torch.dtype:
        return self.models.unet.conv_in.weight.dtype

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> MagicAnimatePipeline:
        self.models.to(device, dtype)
        if device is not None:
            self.execution_device = torch.device(device)
        self._text_embedding = None
        self._compiled_unet = None
        return self

    @contextlib.contextmanager
    def _on_device(self, module: nn.Module, offload: bool) -> Iterator[None]:
        """With `offload`, keep `module` on the execution device only for the duration of the block."""
        if offload:
            module.to(self.execution_device)
        try:
            yield
        finally:
            if offload:
                module.to("cpu")

    def _prepare(self, speedups: Speedups) -> None:
        """Apply the layout switches: offload placement, memory format, compilation."""
        if speedups.offload:
            self.models.to("cpu")
        else:
            self.models.to(self.execution_device)
        channels_last = speedups.channels_last_models(self.execution_device)
        if channels_last != self._channels_last:
            for name in CHANNELS_LAST_MODELS:
                fmt = torch.channels_last if name in channels_last else torch.contiguous_format
                getattr(self.models, name).to(memory_format=fmt)
            self._channels_last = channels_last
        if speedups.compile and self._compiled_unet is None:
            self._compiled_unet = torch.compile(self.models.unet, dynamic=False)

    # ---- conditioning -------------------------------------------------------------------------

    def text_embedding(self) -> torch.Tensor:
        """CLIP embedding `[1, 77, D]` of the empty prompt, which MagicAnimate uses for both halves."""
        if self._text_embedding is None:
            tokenizer = self.models.tokenizer
            ids = tokenizer(
                "", padding="max_length", max_length=tokenizer.model_max_length, truncation=True, return_tensors="pt"
            ).input_ids
            encoder = self.models.text_encoder
            with torch.no_grad():
                self._text_embedding = encoder(ids.to(encoder.device))[0].to(self.execution_device)
        return self._text_embedding

    @torch.no_grad()
    def encode_reference(self, reference: torch.Tensor) -> torch.Tensor:
        """`[H, W, 3]` in [0, 1] -> the VAE latent mean times 0.18215, `[1, 4, H/8, W/8]`."""
        vae = self.models.vae
        pixels = (reference.permute(2, 0, 1)[None] * 2 - 1).to(vae.device, vae.dtype)
        return (vae.encode(pixels).latent_dist.mean * VAE_SCALING).to(self.execution_device)

    @torch.no_grad()
    def decode(self, latents: torch.Tensor, num_frames: int, speedups: Speedups) -> torch.Tensor:
        """The first `num_frames` frames of `[1, 4, N, h, w]` latents as `[F, H, W, 3]` floats on the CPU.

        Frames are decoded `decode_batch_size` at a time and written straight into the output, so device
        memory holds one batch and host memory the output alone; on a CPU, with `threaded_decode`, several
        batches at once, one per thread, and with `split_decode` each convolution split over the threads
        (`parallel_decode.py`).
        """
        vae = self.models.vae
        batch = speedups.decode_batch_size
        scale = 2 ** (len(vae.config.block_out_channels) - 1)
        height, width = latents.shape[-2] * scale, latents.shape[-1] * scale
        frames = torch.empty((num_frames, height, width, 3), dtype=torch.float32)

        def decode_batch(start: int) -> None:
            chunk = latents[0, :, start : min(start + batch, num_frames)].permute(1, 0, 2, 3)
            images = vae.decode((chunk / VAE_SCALING).to(vae.device, vae.dtype)).sample
            frames[start : start + len(images)] = (images / 2 + 0.5).clamp(0, 1).permute(0, 2, 3, 1).float().cpu()

        starts = range(0, num_frames, batch)
        threads = 1
        if speedups.threaded_decode(vae.device):
            task_bytes = vae_decode_bytes(batch, height, width, vae.dtype)
            threads = parallel_decode.thread_count(speedups.decode_threads, len(starts), task_bytes)
        if threads > 1:
            parallel_decode.run_on_threads((functools.partial(decode_batch, start) for start in starts), threads)
            return frames
        split = speedups.split_decode(vae.device)
        with parallel_decode.split_each_frame() if split else contextlib.nullcontext():
            for start in starts:
                decode_batch(start)
        return frames

    def estimate_device_bytes(
        self, height: int, width: int, context_frames: int, speedups: Speedups, kept_feature_rows: int = 0
    ) -> int:
        """Device memory one run at this size needs, roughly (see `memory.py`; `kept_feature_rows` there)."""

        def weight_bytes(module: nn.Module) -> int:
            return sum(p.numel() * p.element_size() for p in module.parameters())

        if speedups.offload:  # one model at a time moves in
            resident = max(weight_bytes(m) for m in self.models.modules())
        else:  # weights already on the device are not free memory any more; only the others will arrive
            resident = sum(
                weight_bytes(m) for m in self.models.modules() if next(m.parameters()).device != self.execution_device
            )
        return estimate_device_bytes(
            resident,
            height,
            width,
            context_frames,
            self.dtype,
            speedups,
            kept_feature_rows=kept_feature_rows,
            kept_feature_channels=self.models.unet.deep_feature_channels,
        )

    # ---- the sampler --------------------------------------------------------------------------

    @torch.no_grad()
    def __call__(
        self,
        reference: torch.Tensor,
        motion: torch.Tensor,
        *,
        seed: int = 1,
        noise: torch.Tensor | None = None,
        num_inference_steps: int = 25,
        guidance_scale: float = 7.5,
        context_frames: int = 16,
        context_overlap: int = 4,
        callback: Callable[[StepInfo], None] | None = None,
        options: SamplingOptions | None = None,
        speedups: Speedups | None = None,
        share: WindowShare | None = None,
    ) -> torch.Tensor:
        """Animate `reference` (`[H, W, 3]` or `[1, H, W, 3]`, floats in [0, 1]) along `motion`.

        `motion` holds DensePose frames `[F, H, W, 3]` in [0, 1] of the same size, a multiple of 8.
        The initial noise is drawn for 16 frames from `seed`, or taken from `noise` (`[K, 4, H/8, W/8]`),
        and tiled along the frames. Returns `[F, H, W, 3]` floats in [0, 1] on the CPU.

        `share` (see `distributed.py`): every rank of a process group calls this with the same inputs;
        each denoises its share of the windows, and only the leader decodes (the others return
        `[0, H, W, 3]`). An error on one rank raises `RankFailed` with its message on every rank.
        """
        share = share or WindowShare()
        options, speedups = options or SamplingOptions(), speedups or Speedups.for_device(self.device)
        check_finite("guidance_scale", guidance_scale, "7.5 as released; 1 or less turns guidance off")
        reference = self.check_inputs(reference, motion, noise, num_inference_steps, context_frames, context_overlap)
        height, width = motion.shape[1], motion.shape[2]
        try:
            kept_rows = kept_feature_rows(motion.shape[0], context_frames, context_overlap, options)
            needed = self.estimate_device_bytes(height, width, context_frames, speedups, kept_rows)
            check_fits(needed, self.execution_device)
            self._prepare(speedups)
            self.deep_features = DeepFeatureReuse(every=options.deep_feature_reuse)
            scheduler = make_scheduler(options.scheduler)
            scheduler.set_timesteps(num_inference_steps, device=self.device)
            run = self.prepare_run(reference, motion, speedups, callback, num_inference_steps)
            latents = self.prepare_latents(noise, seed, height, width, run.num_padded, scheduler)
            plan = WindowPlan.build(
                run.num_padded,
                context_frames,
                context_overlap,
                options.window_weighting,
                options.closed_loop,
                self.device,
            )
            mine = share.windows(len(plan.windows))  # all of them in one process
            # Classifier-free guidance runs on the first `guided_steps` steps only (all of them by default).
            guided_steps = math.ceil(options.guidance_until * num_inference_steps) if guidance_scale > 1.0 else 0
            for step, t in enumerate(scheduler.timesteps):
                do_cfg = step < guided_steps
                # One all-reduce of the per-frame sums per step; counts cover all windows on every rank.
                sums = share.sum(self.denoise_step(run, plan, mine, latents, step, t, do_cfg))
                eps = self.guide(sums / plan.counts, guidance_scale, do_cfg)
                result = scheduler.step(eps[None], t, latents)
                latents = result.prev_sample
                if callback is not None:
                    denoised = getattr(result, "pred_original_sample", None)  # DDIM reports it, DPM-Solver++ not
                    calls = max(len(mine), 1)  # an idle rank (more ranks than windows) reports a whole step
                    callback(StepInfo(step, num_inference_steps, calls, calls, latents, denoised))
            share.agree()  # an error in the last step's callback reaches every rank
        except RankFailed:
            raise
        except Exception as error:
            if share.parallel:
                share.fail(error)
            raise
        finally:
            self.reference_state.bank = None
            self.reference_state.cond_rows = None
            self.deep_features = DeepFeatureReuse(every=1)  # frees the kept deep features
        if not share.leader:
            return torch.empty((0, height, width, 3))
        if self.device.type == "cpu":  # the decode (another thread's heap, too) starts from the weights' level
            return_freed_host_memory()
        with self._on_device(self.models.vae, speedups.offload):
            frames = self.decode(latents, run.num_frames, speedups)
        if self.device.type == "cpu":
            return_freed_host_memory()
        return frames

    # ---- phases of a call -----------------------------------------------------------------------

    def prepare_run(
        self,
        reference: torch.Tensor,
        motion: torch.Tensor,
        speedups: Speedups,
        callback: Callable[[StepInfo], None] | None,
        num_steps: int,
    ) -> _Run:
        """The conditioning every step shares: the empty-prompt embedding and the reference latent."""
        with self._on_device(self.models.text_encoder, speedups.offload):
            text = self.text_embedding()
        with self._on_device(self.models.vae, speedups.offload):
            reference_latent = self.encode_reference(reference)
        num_padded = padded_length(motion.shape[0], NOISE_FRAMES)
        controlnet = self.models.controlnet
        embeddings = None
        if self.device.type == "cpu" and ConditioningEmbeddings.applies_to(controlnet):
            embeddings = ConditioningEmbeddings(controlnet, CPU_CONDITIONING_CACHE_BYTES)
        return _Run(motion, num_padded, text, reference_latent, speedups, callback, num_steps, embeddings)

    def prepare_latents(
        self, noise: torch.Tensor | None, seed: int, height: int, width: int, num_padded: int, scheduler: SchedulerMixin
    ) -> torch.Tensor:
        """Initial latents `[1, 4, num_padded, h, w]`: 16 frames of noise tiled along the padded clip."""
        if noise is None:
            noise = draw_noise(seed, height, width)
        return tile_noise(noise.float(), num_padded).to(self.device) * scheduler.init_noise_sigma

    def reference_bank(self, reference_latent: torch.Tensor, t: torch.Tensor, text: torch.Tensor) -> ReferenceBank:
        """The appearance encoder's reference tokens at timestep `t`, read by the UNet's attention."""
        return self.models.appearance_encoder(reference_latent, t, text)

    def denoise_step(
        self,
        run: _Run,
        plan: WindowPlan,
        indices: list[int],
        latents: torch.Tensor,
        step: int,
        t: torch.Tensor,
        do_cfg: bool,
    ) -> torch.Tensor:
        """Weighted per-frame sums `[halves, 4, N, h, w]` (float32) of the windows `indices` at step `t`.

        Halves: unconditional then conditional with guidance, only the conditional without. Windows are
        batched `windows_per_call` per UNet call; ControlNet residuals are computed once per frame and
        freed after the last of these windows that uses them.
        """
        offload = run.speedups.offload
        with self._on_device(self.models.appearance_encoder, offload):
            self.reference_state.bank = self.reference_bank(run.reference_latent, t, run.text)
        windows = [plan.windows[i] for i in indices]
        controls = ControlResidualCache(self._control_residuals(run, latents, t), windows)
        sums = torch.zeros((2 if do_cfg else 1, *latents.shape[1:]), device=self.device)
        done = 0
        for group in plan.groups(list(range(len(windows))), run.speedups.windows_per_call):
            group_windows = [windows[i] for i in group]
            with self._on_device(self.models.controlnet, offload):
                residuals = controls.for_windows(group_windows)
            with self._on_device(self.models.unet, offload):
                eps = self._unet_call(latents, t, run.text, group_windows, residuals, do_cfg, run.speedups)
            # Fusion: each window adds its position-weighted prediction to the frames it covers; the
            # caller divides by the plan's per-frame weight totals once every window has been added.
            for position, w in enumerate(group):
                sums[:, :, windows[w]] += eps[position] * plan.weights
            done += len(group)
            if run.callback is not None:
                run.callback(StepInfo(step, run.num_steps, done, len(windows)))
        return sums

    @staticmethod
    def guide(averaged: torch.Tensor, guidance_scale: float, do_cfg: bool) -> torch.Tensor:
        """Classifier-free guidance on window-averaged predictions `[halves, 4, N, h, w]` -> `[4, N, h, w]`.

        Row 0 is the prediction without the reference, row 1 with it; guidance extrapolates from the
        first towards the second by `guidance_scale`. As in the original it is applied after averaging.
        """
        if not do_cfg:
            return averaged[0]
        return averaged[0] + guidance_scale * (averaged[1] - averaged[0])

    def _control_residuals(self, run: _Run, latents: torch.Tensor, t: torch.Tensor) -> ComputeResiduals:
        """ControlNet on the given frames of `latents` at `t`: per frame, 12 down residuals then mid."""
        num_frames = run.motion.shape[0]

        def images(index: list[int]) -> torch.Tensor:
            return run.motion[index].permute(0, 3, 1, 2).to(self.device, self.dtype)

        def compute(frames: list[int]) -> list[list[torch.Tensor]]:
            index = [min(f, num_frames - 1) for f in frames]  # edge padding by the last frame
            if run.embeddings is None:
                cond, given = images(index), contextlib.nullcontext()
            else:
                cond, given = run.embeddings(index, images), run.embeddings.passed_to_controlnet()
            sample = latents[0, :, frames].permute(1, 0, 2, 3).to(self.dtype)
            with given:
                down, mid = self.models.controlnet(
                    sample,
                    t,
                    encoder_hidden_states=run.text.expand(len(frames), -1, -1),
                    controlnet_cond=cond,
                    conditioning_scale=1.0,
                    return_dict=False,
                )
            levels = [*down, mid]
            return [[level[i] for level in levels] for i in range(len(frames))]

        return compute

    def _unet_call(
        self,
        latents: torch.Tensor,
        t: torch.Tensor,
        text: torch.Tensor,
        windows: list[list[int]],
        residuals: list[torch.Tensor],
        do_cfg: bool,
        speedups: Speedups,
    ) -> torch.Tensor:
        """UNet3D on a group of windows; returns eps `[windows, halves, 4, F, h, w]` (halves: uncond, cond)."""
        sample = torch.stack([latents[0, :, window] for window in windows]).to(self.dtype)
        down, mid = residuals[:-1], residuals[-1]
        if not do_cfg:
            return self._run_unet(sample, t, text, down, mid, cond=(True,), speedups=speedups)[:, None]
        if speedups.sequential_cfg:
            halves = [self._run_unet(sample, t, text, down, mid, (cond,), speedups) for cond in (False, True)]
            return torch.stack(halves, dim=1)
        if not speedups.share_down_path:
            sample = sample.repeat(2, 1, 1, 1, 1)
            down, mid = [r.repeat(2, 1, 1, 1, 1) for r in down], mid.repeat(2, 1, 1, 1, 1)
            eps = self._run_unet(sample, t, text, down, mid, (False, True), speedups, cfg_copies=1)
        else:
            eps = self._run_unet(sample, t, text, down, mid, (False, True), speedups, cfg_copies=2)
        return eps.reshape(2, len(windows), *eps.shape[1:]).transpose(0, 1)

    def _run_unet(
        self,
        sample: torch.Tensor,
        t: torch.Tensor,
        text: torch.Tensor,
        down: list[torch.Tensor],
        mid: torch.Tensor,
        cond: tuple[bool, ...],
        speedups: Speedups,
        cfg_copies: int = 1,
    ) -> torch.Tensor:
        """One UNet3D call whose output rows are the blocks `cond` (False: without the reference)."""
        frames = sample.shape[2]
        rows_per_block = (sample.shape[0] * cfg_copies // len(cond)) * frames
        self.reference_state.cond_rows = torch.tensor(cond, device=self.device).repeat_interleave(rows_per_block)
        unet = self._compiled_unet if speedups.compile else self.models.unet
        deep = self.deep_features.slot(t, (cond, cfg_copies, tuple(sample.shape)))
        return unet(sample, t, text, down, mid, cfg_copies=cfg_copies, deep=deep).float()

    @staticmethod
    def check_inputs(
        reference: torch.Tensor,
        motion: torch.Tensor,
        noise: torch.Tensor | None,
        steps: int,
        context_frames: int,
        context_overlap: int,
    ) -> torch.Tensor:
        """Reject inputs the sampler cannot use, naming the value and the fix; returns `reference` as `[H, W, 3]`."""
        if reference.ndim == 4 and reference.shape[0] == 1:
            reference = reference[0]
        if reference.ndim != 3 or reference.shape[-1] != 3:
            raise ValueError(f"reference must be one RGB image [H, W, 3]; got shape {list(reference.shape)}")
        if motion.ndim != 4 or motion.shape[-1] != 3:
            raise ValueError(f"motion must be RGB frames [F, H, W, 3]; got shape {list(motion.shape)}")
        if motion.shape[0] == 0:
            raise ValueError("motion has no frames; connect a DensePose video with at least one frame")
        if reference.shape[:2] != motion.shape[1:3]:
            raise ValueError(
                f"reference is {reference.shape[1]}x{reference.shape[0]} but the motion frames are "
                f"{motion.shape[2]}x{motion.shape[1]}; fit both to the same size (e.g. 512x512)"
            )
        height, width = reference.shape[:2]
        if height % 8 or width % 8:
            raise ValueError(f"frame size {width}x{height} must be a multiple of 8 (e.g. 512x512)")
        if steps < 1:
            raise ValueError(f"steps must be at least 1; got {steps}")
        if not 1 <= context_frames <= MAX_FRAMES:
            raise ValueError(
                f"context_frames={context_frames} is outside 1..{MAX_FRAMES}: the motion module's positional "
                f"encoding covers {MAX_FRAMES} frames"
            )
        if not 0 <= context_overlap < context_frames:
            raise ValueError(f"context_overlap={context_overlap} must be in [0, context_frames={context_frames})")
        if noise is not None and tuple(noise.shape[1:]) != (4, height // 8, width // 8):
            raise ValueError(
                f"noise has shape {list(noise.shape)}; for {width}x{height} frames it must be "
                f"[K, 4, {height // 8}, {width // 8}]"
            )
        return reference
