"""Windows shared by several devices of one process (`local_devices.py`), on the CPU.

On CUDA the same code runs one thread per GPU; here the CPU listed twice gives the model and a copy of
it, which is enough to prove the sharing, the sum, the error paths and that an idle copy does not hang.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from magicanimate_core.devices import parse_devices
from magicanimate_core.local_devices import animate_on_devices, pipelines_for, release_copies

VIDEO_MAX, VIDEO_MEAN = 1e-3, 5e-5  # the golden tolerances (test_golden_cases.py)
CPU = torch.device("cpu")


def animate(pipelines, case, steps: int = 2, overlap: int = 4, **extra) -> torch.Tensor:
    arguments = dict(noise=case.noise, num_inference_steps=steps, context_overlap=overlap, **extra)
    return animate_on_devices(pipelines, case.reference, case.motion, **arguments)


@pytest.fixture()
def copies(tiny_pipeline):
    """`copies(n)`: the tiny pipeline and n - 1 copies of it, all on the CPU; dropped after the test."""
    yield lambda n: pipelines_for(tiny_pipeline, [CPU] * n)
    release_copies(tiny_pipeline)


def long_case(case_b):
    """40 frames -> 48 padded: four windows."""
    return type(case_b)(case_b.reference, torch.cat([case_b.motion, case_b.motion])[:40], case_b.noise, {}, 2)


def test_device_lists_parse_and_name_the_bad_entry() -> None:
    assert parse_devices("") == [] and parse_devices(" cpu , cpu ") == [CPU, CPU]
    with pytest.raises(ValueError, match=r"devices: 'gpu0' is not a device name.*cuda:0,cuda:1"):
        parse_devices("cpu,gpu0")
    if torch.cuda.device_count() < 8:
        with pytest.raises(ValueError, match=r"devices: cuda:7 does not exist; torch sees \d CUDA device"):
            parse_devices("cuda:7")


def test_copies_are_separate_networks_and_cached(tiny_pipeline, copies) -> None:
    first, second = copies(2)
    assert first is tiny_pipeline and second is not tiny_pipeline
    assert second.models.unet is not first.models.unet
    weights = dict(first.models.unet.named_parameters())
    for name, parameter in second.models.unet.named_parameters():
        assert parameter.data_ptr() != weights[name].data_ptr() and torch.equal(parameter, weights[name])
    assert copies(2)[1] is second  # kept for the next run


def test_two_devices_match_one_on_four_windows(tiny_pipeline, copies, case_b) -> None:
    case = long_case(case_b)
    seen = []
    shared = animate(copies(2), case, callback=seen.append)
    alone = animate([tiny_pipeline], case)
    error = (shared - alone).abs()
    assert shared.shape == alone.shape == (40, *case.reference.shape)
    assert error.max() <= VIDEO_MAX and error.mean() <= VIDEO_MEAN
    # progress comes from the first device only: its two windows per step, then the step's end
    assert [(i.step, i.call, i.num_calls) for i in seen if i.latents is None] == [
        (0, 1, 2),
        (0, 2, 2),
        (1, 1, 2),
        (1, 2, 2),
    ]


def test_an_idle_copy_does_not_hang(tiny_pipeline, copies, case_b) -> None:
    # 20 frames -> 32 with overlap 0: two windows for three devices; the third only adds zeros
    shared = animate(copies(3), case_b, steps=1, overlap=0)
    alone = animate([tiny_pipeline], case_b, steps=1, overlap=0)
    assert (shared - alone).abs().max() <= VIDEO_MAX


class Cancelled(Exception):
    """Stands for ComfyUI's InterruptProcessingException."""


def test_cancel_on_the_first_device_stops_all_with_the_same_error(copies, case_b) -> None:
    def cancel(info) -> None:
        if info.step == 1:
            raise Cancelled("interrupted")

    with pytest.raises(Cancelled, match="interrupted"):
        animate(copies(2), long_case(case_b), callback=cancel)


def test_an_error_on_another_device_reaches_the_caller_as_itself(copies, case_b, monkeypatch) -> None:
    pipelines = copies(2)

    def broken(*args, **kwargs):
        raise RuntimeError("CUDA out of memory on the second device")

    monkeypatch.setattr(pipelines[1].models.controlnet, "forward", broken)
    with pytest.raises(RuntimeError, match="CUDA out of memory on the second device"):
        animate(pipelines, long_case(case_b))


def test_cli_devices_flag_writes_the_same_video(tiny_pretrained_dir, case_b, tmp_path, capsys) -> None:
    video_io = pytest.importorskip("magicanimate_core.media.video_io")
    from PIL import Image

    from magicanimate_core.cli import main

    models = tmp_path / "models"
    (models / "magicanimate").mkdir(parents=True)
    (models / "magicanimate" / "tiny").symlink_to(tiny_pretrained_dir, target_is_directory=True)
    Image.fromarray((case_b.reference * 255).round().byte().numpy()).save(tmp_path / "reference.png")
    frames = [(frame * 255).round().byte().numpy() for frame in case_b.motion]
    video_io.write_video(tmp_path / "motion.mkv", frames, 25.0, format="ffv1-mkv")
    common = ["animate", "--models-dir", str(models), "--reference", str(tmp_path / "reference.png")]
    common += ["--motion", str(tmp_path / "motion.mkv"), "--size", "64", "--steps", "2", "--dtype", "fp32"]
    decoded = []
    for name, placement in (("one.mkv", ["--device", "cpu"]), ("two.mkv", ["--devices", "cpu,cpu"])):
        assert main([*common, *placement, "--output", str(tmp_path / name)]) == 0
        decoded.append(np.stack(list(video_io.read_video(tmp_path / name)[1])).astype(int))
    assert "(20 frames at 25 fps, 2 devices)" in capsys.readouterr().err
    assert decoded[0].shape == decoded[1].shape and np.abs(decoded[0] - decoded[1]).max() <= 1
