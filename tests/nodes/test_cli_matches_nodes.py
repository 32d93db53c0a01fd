"""The command line and the nodes are one product: the same run writes the same video."""

from __future__ import annotations

import os
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from magicanimate_core.cli import main
from magicanimate_core.media.video_io import read_video, write_video
from tests.nodes.fake_comfy import install

SIZE, FRAMES, STEPS, SEED = 64, 18, 2, 7


def _packets(path: Path) -> list[bytes]:
    with av.open(str(path)) as container:
        return [bytes(p) for p in container.demux(container.streams.video[0]) if p.size]


@pytest.fixture
def inputs(tmp_path: Path) -> tuple[Path, Path]:
    rng = np.random.default_rng(3)
    reference = tmp_path / "reference.png"
    Image.fromarray(rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)).save(reference)
    palette = rng.integers(0, 256, (4, 3), dtype=np.uint8)
    motion = [palette[(np.indices((SIZE, SIZE)).sum(0) // 9 + i) % 4] for i in range(FRAMES)]
    return reference, write_video(tmp_path / "motion.mkv", motion, 25.0)


@pytest.mark.parametrize("video_format, suffix", [("h264-mp4", ".mp4"), ("ffv1-mkv", ".mkv")])
def test_cli_and_nodes_write_the_same_video(
    pack, monkeypatch, tmp_path, tiny_pretrained_dir, inputs, video_format, suffix
):
    reference, motion = inputs
    models = tmp_path / "models"
    (models / "magicanimate").mkdir(parents=True)
    os.symlink(tiny_pretrained_dir, models / "magicanimate" / "tiny")
    cli_out = tmp_path / f"cli{suffix}"
    args = ["animate", "--models-dir", str(models), "--reference", str(reference), "--motion", str(motion)]
    args += ["--output", str(cli_out), "--size", str(SIZE), "--steps", str(STEPS), "--seed", str(SEED)]
    assert main([*args, "--device", "cpu", "--dtype", "fp32"]) == 0

    comfy = install(monkeypatch, tmp_path / "comfy")
    os.symlink(models / "magicanimate", comfy.dir("models") / "magicanimate")
    __import__(f"{pack.__name__}.nodes.comfy_adapter", fromlist=["x"]).register_model_folder("magicanimate")
    for source in (reference, motion):
        (comfy.dir("input") / source.name).write_bytes(source.read_bytes())
    nodes = pack.NODE_CLASS_MAPPINGS
    image = nodes["MagicAnimate_LoadReference"]().load(reference.name, "pad", SIZE, SIZE)[0]
    frames, fps = nodes["MagicAnimate_LoadVideo"]().load(motion.name, 0, 0, 1, 0.0)[:2]
    (model,) = nodes["MagicAnimate_ModelLoader"]().load("tiny", "fp32")
    (video,) = nodes["MagicAnimate_Sampler"]().sample(model, image, frames, SEED, STEPS, 7.5, 16, 4)
    result = nodes["MagicAnimate_SaveVideo"]().save(video, fps, "same", video_format, 63)
    node_out = Path(result["result"][0])

    assert _packets(node_out) == _packets(cli_out)  # identical encoded frames; only the metadata differs
    _, cli_frames = read_video(cli_out)
    _, node_frames = read_video(node_out)
    assert np.array_equal(np.stack(list(cli_frames)), np.stack(list(node_frames)))
