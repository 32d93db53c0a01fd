"""Issue 12 through a real ComfyUI: hostile and careless inputs are refused with the fix, leave nothing behind,
and never take the server down.

The server here runs under an address-space cap (RLIMIT_AS, set by a wrapper before ComfyUI starts) with a
1000 MB memory budget: a memory bomb that got past the checks would kill it or fail within seconds instead of
swapping. A second pack mounted beside this one plays a careless third-party node (0..255 or NaN pixels, an
empty batch, an 8000x8000 batch) and a Cancel pressed as the next node starts. Every refusal test lists
output/ and temp/ before and after; the last test runs a good prompt in the same server.
"""

from __future__ import annotations

import math
import os
import pickle
import stat
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np
import pytest
from comfy_client import ComfyClient, PromptExecutionError, PromptInterrupted, PromptValidationError
from comfy_server import ComfyServer, start_server
from comfyui_setup import PACK_LINK_NAME, PACK_ROOT
from pack_inputs import install
from PIL import Image
from prompts import reference, sampler_prompt, save, video

from magicanimate_core.media.video_io import read_video
from tests.core.test_budget import black_h264
from tests.densepose.test_weights import BOMBS
from tests.hostile_files import black_png

# Address space: these tests peak at about 4 GB (VmPeak); the bombs would need 2.7 GB (picture), 12 GB (pkl)
# and 24.9 GB (video) more, so one that got past its check would fail at once instead of swapping.
CAP_BYTES = 6 << 30
BUDGET_MB = 1000
PREFIX = "hostile/clip"

CAPPED_PYTHON = """#!{python}
import os, resource, sys
resource.setrlimit(resource.RLIMIT_AS, ({cap}, {cap}))
os.environ.update(MAGICANIMATE_MEMORY_BUDGET_MB="{budget}", MALLOC_ARENA_MAX="2")
os.execv(sys.executable, [sys.executable, *sys.argv[1:]])
"""

CARELESS_PACK = '''
import torch

import comfy.model_management


class HostileTest_Images:
    """A careless third-party node: IMAGE batches outside ComfyUI's rules."""

    CATEGORY = "hostile-test"
    FUNCTION = "make"
    RETURN_TYPES = ("IMAGE",)

    @classmethod
    def INPUT_TYPES(cls):
        kinds = ["0..255", "nan_block", "empty", "8000x8000"]
        return {"required": {"kind": (kinds,), "frames": ("INT", {"default": 16, "min": 1, "max": 100})}}

    def make(self, kind, frames):
        if kind == "empty":
            return (torch.zeros(0, 64, 64, 3),)
        if kind == "8000x8000":  # 768 MB a frame, as a loader would hold it
            return (torch.full((frames, 8000, 8000, 3), 0.25),)
        images = torch.full((frames, 64, 64, 3), 0.5)
        if kind == "0..255":
            return (images * 255,)
        images[:, 16:32, 16:32] = float("nan")
        return (images,)


class HostileTest_PressCancel:
    """Passes the images on as if the user pressed Cancel just as the next node starts."""

    CATEGORY = "hostile-test"
    FUNCTION = "run"
    RETURN_TYPES = ("IMAGE",)

    @classmethod
    def INPUT_TYPES(cls):
        return {"required": {"images": ("IMAGE",)}}

    def run(self, images):
        comfy.model_management.interrupt_current_processing(True)
        return (images,)


NODE_CLASS_MAPPINGS = {"HostileTest_Images": HostileTest_Images, "HostileTest_PressCancel": HostileTest_PressCancel}
'''


class _Exploit:
    """Pickles as a call to os.system: loading it must not run it."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def broken_model(models: Path, tiny: Path, name: str, relative: str, content: bytes) -> str:
    """models/magicanimate/<name>: the tiny checkpoints (linked) with `relative` replaced by `content`."""
    root = models / "magicanimate" / name
    for source in tiny.rglob("*"):
        target = root / source.relative_to(tiny)
        if source.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        elif source.relative_to(tiny).as_posix() != relative:
            target.symlink_to(source)
    (root / relative).write_bytes(content)
    return name


@pytest.fixture(scope="module")
def server(comfyui_dir: Path, sample_inputs: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ComfyServer]:
    root = tmp_path_factory.mktemp("hostile")
    wrapper = root / "capped-python"
    wrapper.write_text(CAPPED_PYTHON.format(python=sys.executable, cap=CAP_BYTES, budget=BUDGET_MB))
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    careless = root / "careless-pack"
    careless.mkdir()
    (careless / "__init__.py").write_text(textwrap.dedent(CARELESS_PACK))
    started = start_server(
        comfyui_dir, {PACK_LINK_NAME: PACK_ROOT, "careless-pack": careless}, root / "comfy", python=str(wrapper)
    )
    try:
        install(started, sample_inputs)
        yield started
    finally:
        started.stop()


@pytest.fixture(scope="module")
def client(server: ComfyServer) -> ComfyClient:
    return ComfyClient(server.url)


def files_under(server: ComfyServer) -> list[str]:
    """Every file and folder (with a trailing /) in output/ and temp/, hidden ones included."""
    return sorted(
        f"{folder.name}/{path.relative_to(folder)}{'/' if path.is_dir() else ''}"
        for folder in (server.output_dir, server.temp_dir)
        if folder.exists()
        for path in folder.rglob("*")
    )


def new_files(server: ComfyServer, before: list[str]) -> list[str]:
    return [path for path in files_under(server) if path not in before and not path.endswith("/")]


@pytest.fixture
def nothing_left(server: ComfyServer) -> Iterator[None]:
    before = files_under(server)
    yield
    assert files_under(server) == before
    assert server.process.poll() is None, f"the server died:\n{server.log_tail()}"


def upload(client: ComfyClient, path: Path) -> str:
    return client.upload(path)


def careless(kind: str, frames: int = 16) -> dict:
    return {"class_type": "HostileTest_Images", "inputs": {"kind": kind, "frames": frames}}


def refusal(client: ComfyClient, prompt: dict, node_type: str) -> str:
    with pytest.raises(PromptExecutionError) as error:
        client.run(prompt, timeout=120)
    assert error.value.node_type == node_type, error.value
    return error.value.exception_message.rstrip()


# --- 1-3: memory bombs, refused from the file's own header -----------------------------------------------


def test_huge_png_reference_is_refused_by_its_declared_size(server, client, nothing_left, tmp_path):
    name = upload(client, black_png(tmp_path / "huge_13000.png", 13000, 13000))
    assert (server.input_dir / name).stat().st_size < 30_000
    message = refusal(client, {"1": reference(name), "2": save(["1", 0], PREFIX)}, "MagicAnimate_LoadReference")
    assert f"{name}: a 13000x13000 picture needs 2.7 GB of memory, more than the budget of 1.0 GB" in message
    assert "nothing was loaded. Downscale it to at most 7905x7905 pixels" in message


def test_densepose_pickle_declaring_3e9_elements_is_refused(server, client, nothing_left):
    bomb = server.model_dir("densepose") / "bomb.pkl"
    bomb.write_bytes(BOMBS["shape_only"]())
    assert bomb.stat().st_size <= 150
    prompt = {
        "1": video(),
        "2": {
            "class_type": "MagicAnimate_VideoToDensePose",
            "inputs": {
                "images": ["1", 0],
                "backend": "builtin",
                "weights": "bomb.pkl",
                "score_threshold": 0.05,
                "max_people": 0,
                "output_fit": "source",
                "output_size": 64,
                "colormap": "viridis",
            },
        },
        "3": save(["2", 0], PREFIX),
    }
    message = refusal(client, prompt, "MagicAnimate_VideoToDensePose")
    assert "bomb.pkl" in message and "declares shape [3000000000]" in message
    assert "refused before allocating" in message and "download it again" in message


def test_tiny_video_holding_1000_full_hd_frames_is_refused_before_decoding(server, client, nothing_left):
    path = black_h264(server.input_dir / "black_1000.mp4", 1000, 1920, 1080)
    assert path.stat().st_size < 60_000
    message = refusal(client, {"1": video(path.name, cap=0), "2": save(["1", 0], PREFIX)}, "MagicAnimate_LoadVideo")
    assert "black_1000.mp4: 1000 frames of 1920x1080 (after the frame selection options) needs 24.9 GB" in message
    assert "At most 40 frames of 1920x1080 (24.9 MB each) fit: set frame_load_cap to 40 or less" in message


# --- 4-7: values that used to come back silently wrong ----------------------------------------------------


def test_nan_guidance_scale_is_refused(server, client, nothing_left):
    message = refusal(
        client, sampler_prompt(reference(), video(), PREFIX, guidance_scale=math.nan), "MagicAnimate_Sampler"
    )
    assert message.startswith("guidance_scale is nan, which is not a finite number; enter a finite number")


@pytest.mark.parametrize(
    "kind, expected",
    [
        (
            "0..255",
            "motion (from node 2, 'HostileTest_Images', connected to the Sampler's 'motion' input): pixel values "
            "span "
            "[127.5, 127.5], outside ComfyUI's IMAGE range [0, 1]; they look like 0..255 values: divide "
            "them by 255 in the node that produced them",
        ),
        (
            "nan_block",
            "motion (from node 2, 'HostileTest_Images', connected to the Sampler's 'motion' input): 12288 of "
            "196608 pixel "
            "values are NaN or infinite in 16 frames (the first is frame 0); a black or empty result "
            "would follow. Fix or replace the node that produced these images",
        ),
    ],
)
def test_motion_outside_the_image_range_is_refused(server, client, nothing_left, kind, expected):
    assert refusal(client, sampler_prompt(reference(), careless(kind), PREFIX), "MagicAnimate_Sampler") == expected


def test_nan_frames_are_not_saved_as_a_black_video(server, client, nothing_left):
    message = refusal(
        client, {"7": careless("nan_block", frames=3), "8": save(["7", 0], PREFIX)}, "MagicAnimate_SaveVideo"
    )
    assert message.startswith(
        "images (from node 7, 'HostileTest_Images', connected to Save Video's 'images' input): 2304 of 36864 pixel "
        "values are NaN or infinite in 3 frames (the first is frame 0)"
    )


def test_16_bit_grey_reference_keeps_its_grey(server, client, tmp_path):
    path = tmp_path / "grey16.png"
    Image.fromarray(np.full((64, 64), 32768, np.uint16)).save(path)
    assert Image.open(path).mode == "I;16"
    name = upload(client, path)
    before = files_under(server)
    client.run({"1": reference(name), "2": save(["1", 0], "hostile/grey16", "ffv1-mkv")})
    written = new_files(server, before)
    assert "output/hostile/grey16_00001_.mkv" in written and not any("/." in path for path in written), written
    _, frames = read_video(server.output_dir / "hostile" / "grey16_00001_.mkv")
    assert np.unique(next(frames)).tolist() == [128]  # 32768 / 65535 -> 0.5, not 255 (white)


# --- 8 and the 'also' list: SaveVideo writes nothing it cannot finish -----------------------------------


def test_nul_in_save_prefix_leaves_no_hidden_file(server, client, nothing_left):
    message = refusal(client, {"1": video(), "2": save(["1", 0], "x\0y")}, "MagicAnimate_SaveVideo")
    assert message == r"filename_prefix 'x\x00y' contains a NUL character (\0), which no file name can hold; remove it"
    assert not list(server.output_dir.glob(".x*"))


def test_cancel_during_save_stops_it_and_removes_the_temporary_file(server, client, nothing_left):
    prompt = {
        "1": video(),
        "2": {"class_type": "HostileTest_PressCancel", "inputs": {"images": ["1", 0]}},
        "3": save(["2", 0], "hostile/cancelled"),
    }
    with pytest.raises(PromptInterrupted, match="interrupted at node 3"):
        client.run(prompt, timeout=120)


def test_empty_batch_to_save_names_the_fix(server, client, nothing_left):
    message = refusal(client, {"1": careless("empty"), "2": save(["1", 0], PREFIX)}, "MagicAnimate_SaveVideo")
    assert message.startswith("images holds no frames, so there is nothing to save: the node connected to Save Video")
    assert "check that node's inputs" in message


# --- 9: weight files: refusals name the file and the fix, never weights_only=False ------------------------


@pytest.mark.parametrize(
    "relative, content, cause",
    [
        (
            "stable-diffusion-v1-5/text_encoder/pytorch_model.bin",
            "exploit",
            "refused: not a checkpoint of plain tensors (it asks to import posix.system)",
        ),
        ("sd-vae-ft-mse/diffusion_pytorch_model.safetensors", "truncated", "truncated or corrupted safetensors file"),
        ("stable-diffusion-v1-5/unet/config.json", b"{not json", "not valid JSON"),
    ],
)
def test_broken_model_files_are_named_with_the_fix(
    server, client, nothing_left, tiny_pretrained_dir, tmp_path, relative, content, cause
):
    tiny = tiny_pretrained_dir
    marker = tmp_path / "exploit-ran"
    if content == "exploit":
        content = pickle.dumps(_Exploit(marker), protocol=2)
    elif content == "truncated":
        content = (tiny / relative).read_bytes()[:1000]
    name = broken_model(
        server.models_dir, tiny, f"broken-{Path(relative).parent.name}-{Path(relative).suffix[1:]}", relative, content
    )
    message = refusal(client, sampler_prompt(reference(), video(), PREFIX, model=name), "MagicAnimate_ModelLoader")
    assert str(server.models_dir / "magicanimate" / name / relative) in message and cause in message
    assert "download it again" in message and "verify" in message
    assert "weights_only=False" not in message and not marker.exists()


# --- the 'also' list: refusals that name the fix ----------------------------------------------------------


def test_zero_frame_video_is_not_told_to_lower_skip(server, client, nothing_left):
    path = server.input_dir / "no_frames.avi"  # a container with a video stream and not one frame
    with av.open(str(path), "w") as out:
        stream = out.add_stream("ffv1", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 64, "bgr0"
        out.start_encoding()
    message = refusal(client, {"1": video(path.name), "2": save(["1", 0], PREFIX)}, "MagicAnimate_LoadVideo")
    assert message == (
        "No frames left in 'no_frames.avi' (0 frames at 25 fps) after skip_first_frames=0, select_every_nth=1, "
        "force_rate=0; the file holds no frame that can be decoded: re-export it (e.g. as H.264 MP4) or pick another"
    )


def test_8000x8000_motion_is_fitted_not_told_to_exceed_the_maximum(server, client):
    before = files_under(server)
    result = client.run(sampler_prompt(reference(), careless("8000x8000", frames=1), PREFIX), timeout=300)
    written = new_files(server, before)
    assert len(written) == 1 and written[0].endswith(".mp4")
    path = server.output_dir / result.files()[0].subfolder / result.files()[0].filename
    info, frames = read_video(path)
    assert (info.width, info.height, sum(1 for _ in frames)) == (64, 64, 1)


def test_non_image_renamed_png_names_the_fix(server, client, nothing_left, tmp_path):
    path = tmp_path / "not_a_picture.png"
    path.write_bytes(b"%PDF-1.4\n" + b"0" * 200)
    message = refusal(
        client, {"1": reference(upload(client, path)), "2": save(["1", 0], PREFIX)}, "MagicAnimate_LoadReference"
    )
    assert "not_a_picture.png: not a picture PIL can read" in message
    assert "open it in an image editor and save it as PNG or JPEG" in message


def test_nul_in_a_file_name_names_the_fix(server, client, nothing_left):
    with pytest.raises(PromptValidationError) as error:
        client.run({"1": reference("x\0y.png"), "2": save(["1", 0], PREFIX)})
    assert "contains a NUL character (\\0), which no file name can hold; pick a file from the list" in str(error.value)


# --- after all of that, the same server still works ---------------------------------------------------------


def test_a_good_prompt_still_succeeds_in_the_same_server(server, client):
    assert server.process.poll() is None
    before = files_under(server)
    result = client.run(sampler_prompt(reference(), video(), PREFIX), timeout=300)
    written = new_files(server, before)
    assert written == [f"output/hostile/{result.files()[0].filename}"]
    info, frames = read_video(server.output_dir / "hostile" / result.files()[0].filename)
    assert (info.width, info.height, sum(1 for _ in frames)) == (64, 64, 16)
