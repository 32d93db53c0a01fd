"""temporal_attention.ckpt -> overlay safetensors: loading from either gives identical weights."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from magicanimate_core.temporal_weights import (
    check_overlay_base,
    convert_temporal_ckpt,
    read_converted_temporal,
    read_temporal_ckpt,
)

TEMPORAL = Path("MagicAnimate/temporal_attention/temporal_attention.ckpt")
SD15_UNET = Path("stable-diffusion-v1-5/unet/diffusion_pytorch_model.bin")


def mirror_with_converted(tiny: Path, root: Path) -> Path:
    """A model folder: symlinks to the tiny checkpoints, plus the converted overlay beside the ckpt."""
    root.mkdir()
    for item in tiny.iterdir():
        if item.name != "MagicAnimate":
            (root / item.name).symlink_to(item)
    (root / "MagicAnimate").mkdir()
    for item in (tiny / "MagicAnimate").iterdir():
        if item.name != "temporal_attention":
            (root / "MagicAnimate" / item.name).symlink_to(item)
    temporal = root / TEMPORAL.parent
    temporal.mkdir()
    (temporal / TEMPORAL.name).symlink_to(tiny / TEMPORAL)
    return root


def test_overlay_equals_ckpt_at_state_dict_level(tiny_pretrained_dir, tmp_path):
    sd15 = torch.load(tiny_pretrained_dir / SD15_UNET, weights_only=True)
    out = convert_temporal_ckpt(tiny_pretrained_dir / TEMPORAL, sd15, tmp_path / "overlay.safetensors")
    assert not list(tmp_path.glob("*.tmp"))
    overlay = read_converted_temporal(out)
    ckpt = read_temporal_ckpt(tiny_pretrained_dir / TEMPORAL)
    assert sum("motion_modules." in key for key in overlay) == 560
    assert {**sd15, **overlay}.keys() == {**sd15, **ckpt}.keys()
    merged_overlay, merged_ckpt = {**sd15, **overlay}, {**sd15, **ckpt}
    assert all(torch.equal(merged_overlay[key], merged_ckpt[key]) for key in merged_ckpt)
    check_overlay_base(out, sd15)


def test_overlay_drops_spatial_tensors_equal_to_sd15(tiny_pretrained_dir, tmp_path):
    ckpt = read_temporal_ckpt(tiny_pretrained_dir / TEMPORAL)
    base = {key: value.clone() for key, value in ckpt.items() if "motion_modules." not in key}
    base["conv_in.weight"] = base["conv_in.weight"] + 1  # the only spatial tensor that differs
    out = convert_temporal_ckpt(tiny_pretrained_dir / TEMPORAL, base, tmp_path / "overlay.safetensors")
    overlay = read_converted_temporal(out)
    assert [key for key in overlay if "motion_modules." not in key] == ["conv_in.weight"]
    check_overlay_base(out, base)
    other = dict(base, **{"conv_out.weight": base["conv_out.weight"] * 2})
    with pytest.raises(ValueError, match="different SD1.5 UNet"):
        check_overlay_base(out, other)


def test_loading_from_ckpt_or_converted_is_identical(tiny_pretrained_dir, tmp_path):
    loading = pytest.importorskip("magicanimate_core.loading")
    root = mirror_with_converted(tiny_pretrained_dir, tmp_path / "models")
    sd15 = torch.load(tiny_pretrained_dir / SD15_UNET, weights_only=True)
    convert_temporal_ckpt(root / TEMPORAL, sd15)
    assert (root / TEMPORAL.with_suffix(".safetensors")).is_file()
    from_ckpt = loading.load_models(tiny_pretrained_dir).unet.state_dict()
    from_overlay = loading.load_models(root).unet.state_dict()
    assert from_ckpt.keys() == from_overlay.keys()
    assert all(torch.equal(from_ckpt[key], from_overlay[key]) for key in from_ckpt)
