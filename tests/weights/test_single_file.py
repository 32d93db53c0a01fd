"""Single-file SD1.5 / VAE checkpoints in the LDM layout load to the same modules as the diffusers folders."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from safetensors.torch import save_file
from transformers import CLIPTextModel, CLIPTokenizer

from magicanimate_core.single_file import (
    EmptyPromptTokenizer,
    SD15Configs,
    load_sd15_single_file,
    load_vae_single_file,
)


@pytest.fixture(scope="module")
def tiny(tiny_pretrained_dir: Path):
    sd15 = tiny_pretrained_dir / "stable-diffusion-v1-5"
    unet = UNet2DConditionModel.from_pretrained(sd15 / "unet").eval()
    text = CLIPTextModel.from_pretrained(sd15 / "text_encoder").eval()
    vae = AutoencoderKL.from_pretrained(tiny_pretrained_dir / "sd-vae-ft-mse").eval()
    tokenizer = CLIPTokenizer.from_pretrained(sd15 / "tokenizer")
    return sd15, unet, text, vae, tokenizer


def tiny_configs(sd15: Path) -> SD15Configs:
    return SD15Configs(
        unet=json.loads((sd15 / "unet" / "config.json").read_text()),
        text_encoder=json.loads((sd15 / "text_encoder" / "config.json").read_text()),
        bos_token_id=520,
        eos_token_id=521,
    )


def write_single_file(tmp_path: Path, tiny, ldm_layout, suffix: str) -> Path:
    _, unet, text, vae, _ = tiny
    checkpoint = {f"model.diffusion_model.{k}": v for k, v in ldm_layout.unet_to_ldm(unet.state_dict()).items()}
    checkpoint |= {f"cond_stage_model.transformer.{k}": v for k, v in text.state_dict().items()}
    checkpoint |= {f"first_stage_model.{k}": v for k, v in ldm_layout.vae_to_ldm(vae.state_dict()).items()}
    checkpoint = {k: v.contiguous().clone() for k, v in checkpoint.items()}
    path = tmp_path / f"tiny_sd15{suffix}"
    if suffix == ".safetensors":
        save_file(checkpoint, str(path))
    else:
        torch.save({"state_dict": checkpoint}, path)
    return path


@pytest.mark.parametrize("suffix", [".safetensors", ".ckpt"])
def test_sd15_single_file_matches_diffusers_folder(tmp_path, tiny, ldm_layout, suffix):
    sd15, unet, text, _, tokenizer = tiny
    path = write_single_file(tmp_path, tiny, ldm_layout, suffix)
    parts = load_sd15_single_file(path, torch.float32, configs=tiny_configs(sd15))

    rebuilt = UNet2DConditionModel.from_config(parts.unet_config).eval()
    rebuilt.load_state_dict(parts.unet_state_dict, strict=True)
    sample = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    context = torch.randn(2, 77, 32, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.equal(rebuilt(sample, 500, context).sample, unet(sample, 500, context).sample)

    kwargs = dict(padding="max_length", max_length=77, truncation=True, return_tensors="pt")
    reference_ids = tokenizer("", **kwargs).input_ids
    ids = parts.tokenizer("", **kwargs).input_ids
    assert torch.equal(ids, reference_ids)
    with torch.no_grad():
        assert torch.equal(parts.text_encoder(ids)[0], text(reference_ids)[0])


def test_vae_single_file_matches_diffusers_folder(tmp_path, tiny, tiny_pretrained_dir, ldm_layout):
    _, _, _, vae, _ = tiny
    path = tmp_path / "tiny-vae.safetensors"
    save_file({k: v.contiguous() for k, v in ldm_layout.vae_to_ldm(vae.state_dict()).items()}, str(path))
    config = json.loads((tiny_pretrained_dir / "sd-vae-ft-mse" / "config.json").read_text())
    loaded = load_vae_single_file(path, torch.float32, config=config)
    image = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(2)) * 2 - 1
    with torch.no_grad():
        latent = vae.encode(image).latent_dist.mean
        assert torch.equal(loaded.encode(image).latent_dist.mean, latent)
        assert torch.equal(loaded.decode(latent).sample, vae.decode(latent).sample)


def test_empty_prompt_tokenizer_ids_and_refusal():
    ids = EmptyPromptTokenizer()(["", ""], padding="max_length", max_length=77, return_tensors="pt").input_ids
    assert ids.shape == (2, 77)
    assert ids[0].tolist() == [49406] + [49407] * 76
    with pytest.raises(ValueError, match="only the empty prompt"):
        EmptyPromptTokenizer()("a dancer")


def test_wrong_file_kind_is_named(tmp_path, tiny, ldm_layout):
    _, _, _, vae, _ = tiny
    path = tmp_path / "vae-only.safetensors"
    save_file({k: v.contiguous() for k, v in ldm_layout.vae_to_ldm(vae.state_dict()).items()}, str(path))
    with pytest.raises(ValueError, match="vae-only.safetensors has no UNet weights"):
        load_sd15_single_file(path)
