"""Test-side inverse mapping: diffusers SD1.5 state dicts -> original LDM single-file key layout."""

from __future__ import annotations

import torch

RESNET_UNET = {
    "norm1": "in_layers.0",
    "conv1": "in_layers.2",
    "time_emb_proj": "emb_layers.1",
    "norm2": "out_layers.0",
    "conv2": "out_layers.3",
    "conv_shortcut": "skip_connection",
}
VAE_ATTN = {"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out.0": "proj_out"}


def _sub(rest: str, table: dict[str, str]) -> str:
    for old, new in table.items():
        if rest.startswith(old + "."):
            return new + rest[len(old) :]
    return rest


def unet_to_ldm(sd: dict[str, torch.Tensor], layers: int = 2) -> dict[str, torch.Tensor]:
    fixed = {
        "time_embedding.linear_1": "time_embed.0",
        "time_embedding.linear_2": "time_embed.2",
        "conv_in": "input_blocks.0.0",
        "conv_norm_out": "out.0",
        "conv_out": "out.2",
    }
    out = {}
    for key, value in sd.items():
        p = key.split(".")
        head = ".".join(p[:-1])
        if head in fixed:
            new = f"{fixed[head]}.{p[-1]}"
        elif p[0] == "down_blocks":
            b = int(p[1])
            if p[2] == "downsamplers":
                new = f"input_blocks.{(layers + 1) * (b + 1)}.0.op.{p[-1]}"
            else:
                idx = (layers + 1) * b + int(p[3]) + 1
                rest = ".".join(p[4:])
                new = (
                    f"input_blocks.{idx}.0.{_sub(rest, RESNET_UNET)}"
                    if p[2] == "resnets"
                    else f"input_blocks.{idx}.1.{rest}"
                )
        elif p[0] == "mid_block":
            rest = ".".join(p[3:])
            new = (
                f"middle_block.{2 * int(p[2])}.{_sub(rest, RESNET_UNET)}"
                if p[1] == "resnets"
                else f"middle_block.1.{rest}"
            )
        elif p[0] == "up_blocks":
            b = int(p[1])
            if p[2] == "upsamplers":
                slot = 1 if b == 0 else 2
                new = f"output_blocks.{(layers + 1) * b + layers}.{slot}.conv.{p[-1]}"
            else:
                idx = (layers + 1) * b + int(p[3])
                rest = ".".join(p[4:])
                new = (
                    f"output_blocks.{idx}.0.{_sub(rest, RESNET_UNET)}"
                    if p[2] == "resnets"
                    else f"output_blocks.{idx}.1.{rest}"
                )
        else:
            raise KeyError(key)
        out[new] = value
    return out


def vae_to_ldm(sd: dict[str, torch.Tensor], num_blocks: int = 4) -> dict[str, torch.Tensor]:
    out = {}
    for key, value in sd.items():
        p = key.split(".")
        part = p[0]
        if part in ("quant_conv", "post_quant_conv"):
            new = key
        elif p[1] in ("conv_in", "conv_out"):
            new = key
        elif p[1] == "conv_norm_out":
            new = f"{part}.norm_out.{p[-1]}"
        elif p[1] == "mid_block":
            if p[2] == "resnets":
                new = f"{part}.mid.block_{int(p[3]) + 1}.{'.'.join(p[4:])}"
            else:
                rest = _sub(".".join(p[4:]), VAE_ATTN)
                new = f"{part}.mid.attn_1.{rest}"
                if value.ndim == 2:
                    value = value[:, :, None, None]
        else:
            i = int(p[2])
            level = i if part == "encoder" else num_blocks - 1 - i
            name = "down" if part == "encoder" else "up"
            if p[3] == "resnets":
                rest = ".".join(p[5:]).replace("conv_shortcut", "nin_shortcut")
                new = f"{part}.{name}.{level}.block.{p[4]}.{rest}"
            else:
                new = f"{part}.{name}.{level}.{'downsample' if part == 'encoder' else 'upsample'}.conv.{p[-1]}"
        out[new] = value
    return out
