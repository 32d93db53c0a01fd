"""The DDIM scheduler exactly as MagicAnimate configures it (its own, not SD1.5's scheduler_config)."""

from __future__ import annotations

from diffusers import DDIMScheduler


def magicanimate_scheduler() -> DDIMScheduler:
    """DDIM with linear betas 0.00085-0.012, leading spacing, steps_offset 1, no clipping, eta 0.

    Every parameter is explicit, so diffusers' changing defaults cannot move the result.
    """
    return DDIMScheduler(
        num_train_timesteps=1000,
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="linear",
        clip_sample=False,
        set_alpha_to_one=True,
        steps_offset=1,
        prediction_type="epsilon",
        timestep_spacing="leading",
        thresholding=False,
        rescale_betas_zero_snr=False,
    )
