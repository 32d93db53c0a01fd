"""The command-line main job: golden case A from the tiny checkpoints, and --help documents every option."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from magicanimate_core.cli import build_parser, main

PACK_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture()
def golden_models_dir(golden_pretrained_dir: Path, tmp_path: Path) -> Path:
    root = tmp_path / "models"
    (root / "magicanimate").mkdir(parents=True)
    (root / "magicanimate" / "tiny").symlink_to(golden_pretrained_dir, target_is_directory=True)
    return root


def test_animate_golden_case_a(golden_dir, golden_models_dir, tmp_path):
    video_io = pytest.importorskip("magicanimate_core.media.video_io")
    case = golden_dir / "case_A"
    motion = video_io.write_video(tmp_path / "motion.mkv", list(np.load(case / "control.npy")), 25.0)
    init = load_file(str(case / "inputs.safetensors"))["init_noise"]  # [1, 4, 16, 8, 8]
    noise_path = tmp_path / "noise.safetensors"
    save_file({"noise": init[0].permute(1, 0, 2, 3).contiguous()}, str(noise_path))
    output = tmp_path / "out.mkv"
    code = main(
        [
            "animate",
            "--models-dir",
            str(golden_models_dir),
            "--reference",
            str(case / "reference.png"),
            "--motion",
            str(motion),
            "--output",
            str(output),
            "--noise",
            str(noise_path),
            "--steps",
            "3",
            "--size",
            "64",
            "--device",
            "cpu",
            "--dtype",
            "fp32",
        ]
    )
    assert code == 0
    _, frames = video_io.read_video(output)
    result = torch.from_numpy(np.stack(list(frames))).float() / 255
    golden = load_file(str(case / "outputs.safetensors"))["video"]
    assert result.shape == golden.shape
    assert (result - golden).abs().max().item() <= 2 / 255


def test_missing_models_error_lists_files_and_urls(sample_inputs, tmp_path, capsys):
    reference = str(sample_inputs / "case_A" / "reference.png")
    code = main(
        [
            "animate",
            "--models-dir",
            str(tmp_path),
            "--reference",
            reference,
            "--motion",
            reference,
            "--output",
            str(tmp_path / "o.mp4"),
        ]
    )
    err = capsys.readouterr().err
    assert code == 1 and str(tmp_path) in err
    assert "magicanimate/default/MagicAnimate/temporal_attention/temporal_attention.ckpt" in err
    assert "https://huggingface.co/zcxu-eric/MagicAnimate/resolve/" in err


def _parsers(parser: argparse.ArgumentParser):
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from _parsers(sub)


def test_help_documents_every_option():
    names = set()
    for parser in _parsers(build_parser()):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                assert all(choice.help for choice in action._choices_actions)
                continue
            assert action.help and action.help != argparse.SUPPRESS, (parser.prog, action.dest)
            names.update(action.option_strings)
    for option in (
        "--seed",
        "--steps",
        "--guidance-scale",
        "--context-frames",
        "--context-overlap",
        "--size",
        "--width",
        "--height",
        "--fit",
        "--noise",
        "--device",
        "--dtype",
        "--frame-load-cap",
        "--skip-first-frames",
        "--select-every-nth",
        "--force-rate",
        "--fps",
        "--models-dir",
        "--model",
        "--download",
        "--extract-densepose",
    ):
        assert option in names


def test_module_entry_point_help():
    done = subprocess.run(
        [sys.executable, "-m", "magicanimate_core", "animate", "--help"],
        cwd=PACK_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0 and "--context-overlap" in done.stdout
