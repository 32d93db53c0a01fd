"""Golden case A through ComfyUI's API with core nodes around ours: LoadImage, LoadLatent and SaveImage.

The 2024 ComfyUI's LoadLatent multiplies by 1/0.18215 unless the file has a `latent_format_version_0`
key, so the noise file carries that key and arrives unscaled.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch
from comfy_client import ComfyClient
from comfy_server import ComfyServer
from pack_inputs import install
from PIL import Image
from safetensors.torch import load_file, save_file

from magicanimate_core.media.video_io import write_video


def test_golden_case_a_matches_the_original(comfy_server: ComfyServer, comfy_client: ComfyClient, golden_dir: Path):
    case = golden_dir / "case_A"
    install(comfy_server, golden_dir)
    model = comfy_server.models_dir / "magicanimate" / "golden"  # "tiny" may hold the generated checkpoints
    if not model.exists():
        model.symlink_to(golden_dir / "tiny_checkpoints" / "pretrained_models", target_is_directory=True)
    write_video(
        comfy_server.input_dir / "golden_a.mkv", np.load(case / "control.npy"), 25, format="ffv1-mkv", overwrite=True
    )
    noise = load_file(case / "inputs.safetensors")["init_noise"]  # [1, 4, 16, 8, 8]
    save_file(
        {"latent_tensor": noise[0].permute(1, 0, 2, 3).contiguous(), "latent_format_version_0": torch.tensor([])},
        str(comfy_server.input_dir / "golden_a.latent"),
    )
    prompt = {
        "1": {"class_type": "LoadImage", "inputs": {"image": "reference.png"}},
        "2": {
            "class_type": "MagicAnimate_LoadVideo",
            "inputs": {
                "video": "golden_a.mkv",
                "frame_load_cap": 0,
                "skip_first_frames": 0,
                "select_every_nth": 1,
                "force_rate": 0.0,
            },
        },
        "3": {"class_type": "LoadLatent", "inputs": {"latent": "golden_a.latent"}},
        "4": {"class_type": "MagicAnimate_ModelLoader", "inputs": {"model": "golden", "dtype": "fp32"}},
        "5": {
            "class_type": "MagicAnimate_Sampler",
            "inputs": {
                "model": ["4", 0],
                "reference": ["1", 0],
                "motion": ["2", 0],
                "noise": ["3", 0],
                "seed": 12345,
                "steps": 3,
                "guidance_scale": 7.5,
                "context_frames": 16,
                "context_overlap": 4,
            },
        },
        "6": {"class_type": "SaveImage", "inputs": {"images": ["5", 0], "filename_prefix": "golden/case_a"}},
    }
    files = comfy_client.run(prompt).files("6")
    frames = np.stack([np.asarray(Image.open(io.BytesIO(comfy_client.view(f)))) for f in files])
    golden = load_file(case / "outputs.safetensors")["video"].numpy()
    assert frames.shape == golden.shape == (16, 64, 64, 3)
    assert np.abs(frames / 255.0 - golden).max() <= 2 / 255
