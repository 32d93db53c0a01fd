"""Schedulers: DDIM exactly as MagicAnimate configures it, and an opt-in DPM-Solver++ for fewer steps."""

from __future__ import annotations

from diffusers import DDIMScheduler, DPMSolverMultistepScheduler, SchedulerMixin

# MagicAnimate's noise schedule (its own, not SD1.5's scheduler_config): every parameter explicit, so
# diffusers' changing defaults cannot move the result.
NOISE_SCHEDULE = dict(
    num_train_timesteps=1000,
    beta_start=0.00085,
    beta_end=0.012,
    beta_schedule="linear",
    steps_offset=1,
    prediction_type="epsilon",
    timestep_spacing="leading",
)
SCHEDULERS = ("ddim", "dpmpp")


def magicanimate_scheduler() -> DDIMScheduler:
    """DDIM with linear betas 0.00085-0.012, leading spacing, steps_offset 1, no clipping, eta 0."""
    return DDIMScheduler(
        **NOISE_SCHEDULE, clip_sample=False, set_alpha_to_one=True, thresholding=False, rescale_betas_zero_snr=False
    )


def make_scheduler(name: str) -> SchedulerMixin:
    """`ddim` (the reference) or `dpmpp` (DPM-Solver++ 2M on the same noise schedule; changes the output)."""
    if name == "ddim":
        return magicanimate_scheduler()
    if name == "dpmpp":
        return DPMSolverMultistepScheduler(**NOISE_SCHEDULE, algorithm_type="dpmsolver++", solver_order=2)
    raise ValueError(f"unknown scheduler {name!r}; choose one of {', '.join(SCHEDULERS)}")
