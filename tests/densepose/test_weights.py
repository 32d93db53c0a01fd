"""Weights: allow-list unpickling, clear errors for bad files, one-time safetensors conversion."""

from __future__ import annotations

import math
import os
import pickle
import re
import shutil

import numpy as np
import pytest
import torch

from densepose_node.checkpoint_layout import concrete_layout, resnet50_fpn_widths
from densepose_node.weights import (
    WEIGHTS_FILENAME,
    WEIGHTS_LICENSE,
    WEIGHTS_URL,
    WeightsError,
    load_weights,
    read_model_zoo_pickle,
)
from tests.memory_cap import run_capped
from tests.tiny_densepose import tiny_state


class _Exploit:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class _Declared:
    """Pickles as a numpy array reconstruction declaring `shape` (and, with `state`, dtype and raw bytes)."""

    def __init__(self, shape: tuple[int, ...], state: tuple | None = None) -> None:
        self.shape, self.state = shape, state

    def __reduce__(self):
        reconstruct = (np.ndarray.__reduce__(np.zeros(1))[0], (np.ndarray, self.shape, b"b"))
        return reconstruct if self.state is None else (*reconstruct, self.state)


def tiny_model() -> dict[str, np.ndarray]:
    return tiny_state()


@pytest.fixture
def tiny_pkl(tiny_densepose_pkl, tmp_path):
    path = tmp_path / "tiny_densepose.pkl"
    shutil.copy(tiny_densepose_pkl, path)
    return path


def test_constants_for_the_readme():
    assert WEIGHTS_FILENAME == "model_final_162be9.pkl" and WEIGHTS_URL.endswith(WEIGHTS_FILENAME)
    assert "CC BY-SA 3.0" in WEIGHTS_LICENSE


def test_hostile_pickle_is_refused_without_running_code(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "model_final_162be9.pkl"
    payload = {"model": {"w": np.zeros(2, np.float32), "x": _Exploit(str(marker))}, "__author__": "x"}
    path.write_bytes(pickle.dumps(payload, protocol=2))
    with pytest.raises(WeightsError) as error:
        read_model_zoo_pickle(path)
    assert not marker.exists()
    message = str(error.value)
    assert str(path) in message and "refused global" in message and "system" in message


def test_non_array_entries_are_refused(tmp_path):
    path = tmp_path / "odd.pkl"
    path.write_bytes(pickle.dumps({"model": {"w": "text"}}))
    with pytest.raises(WeightsError, match="entry 'w' is str"):
        read_model_zoo_pickle(path)


@pytest.mark.parametrize("content", [b"", b"garbage, not a pickle at all", b"\x80\x03}q\x00(X\x05\x00"])
def test_garbage_and_truncated_pickles(tmp_path, content):
    path = tmp_path / "broken.pkl"
    path.write_bytes(content)
    with pytest.raises(WeightsError, match=f"{path}.*download it again"):
        load_weights(path)


def test_truncated_real_pickle(tiny_pkl):
    tiny_pkl.write_bytes(tiny_pkl.read_bytes()[: tiny_pkl.stat().st_size // 2])
    with pytest.raises(WeightsError, match="truncated"):
        load_weights(tiny_pkl)


def test_garbage_safetensors(tmp_path):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}")
    with pytest.raises(WeightsError, match="unreadable safetensors"):
        load_weights(path)


def test_missing_file_says_where_to_put_it(tmp_path):
    with pytest.raises(WeightsError, match="models/densepose"):
        load_weights(tmp_path / WEIGHTS_FILENAME)


def test_conversion_once_then_reused(tiny_pkl):
    reference = {name: torch.from_numpy(array) for name, array in tiny_state().items()}
    first = load_weights(tiny_pkl)
    converted = tiny_pkl.with_suffix(".safetensors")
    assert converted.is_file() and not list(tiny_pkl.parent.glob("*.tmp"))
    assert first.keys() == reference.keys() and all(torch.equal(first[k], reference[k]) for k in reference)
    stamp = converted.stat().st_mtime_ns
    second = load_weights(tiny_pkl)
    assert converted.stat().st_mtime_ns == stamp
    assert all(torch.equal(first[k], second[k]) for k in first)


def test_stale_conversion_is_rebuilt(tiny_pkl):
    load_weights(tiny_pkl)
    state = read_model_zoo_pickle(tiny_pkl)
    state["backbone.fpn_output2.bias"] += 1
    tiny_pkl.write_bytes(pickle.dumps({"model": {k: v.numpy() for k, v in state.items()}, "__author__": "t"}))
    assert torch.equal(load_weights(tiny_pkl)["backbone.fpn_output2.bias"], state["backbone.fpn_output2.bias"])


def test_read_only_folder_falls_back_to_memory(tiny_pkl, monkeypatch):
    def read_only(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(tiny_pkl.parent))

    monkeypatch.setattr("densepose_node.weights.tempfile.mkstemp", read_only)
    with pytest.warns(UserWarning, match="not writable"):
        state = load_weights(tiny_pkl)
    assert len(state) == 335 and not tiny_pkl.with_suffix(".safetensors").exists()


# Pickle bombs: each declares far more than the file holds. The refusal must come from the declaration
# check, in a child process whose address space is capped (a real allocation would fail or swap instead).
BOMBS = {
    "shape_only": lambda: pickle.dumps({"model": {"pixel_mean": _Declared((3_000_000_000,))}}, protocol=3),
    "shape_in_state": lambda: pickle.dumps(
        {"model": {"pixel_std": _Declared((0,), (1, (3_000_000_000,), np.dtype("f4"), False, b""))}}, protocol=3
    ),
    "bytes8_length": lambda: b"\x80\x04\x8e" + (3_000_000_000).to_bytes(8, "little") + b"\x00" * 8 + b".",
    "ndarray_call": lambda: (
        b"\x80\x02}X\x05\x00\x00\x00model}X\n\x00\x00\x00pixel_meancnumpy\nndarray\n"
        b"\x8a\x05\x00^\xd0\xb2\x00\x85X\x02\x00\x00\x00f8\x86R\x8a\x01\x00s."
    ),
}
BOMB_REFUSALS = {
    "shape_only": "tensor 'pixel_mean' declares shape [3000000000] (3000000000 elements: 3000000000 bytes or more), "
    "more than the whole {size}-byte file holds; refused before allocating. Delete it and download it again from "
    + WEIGHTS_URL,
    "shape_in_state": "tensor 'pixel_std' declares shape [3000000000] (3000000000 elements of float32: 12000000000 "
    "bytes), more than the whole {size}-byte file holds; refused before allocating.",
    "bytes8_length": "truncated or not a pickle (ValueError: BINBYTES8 at byte 2 declares 3000000000 bytes but "
    "only 9 remain); download it again from " + WEIGHTS_URL,
    "ndarray_call": "not loaded, refused direct numpy.ndarray construction (not a plain model-zoo pickle).",
}


def test_pickle_bombs_are_refused_before_allocating_under_a_memory_cap(tmp_path):
    paths = {}
    for name, build in BOMBS.items():
        paths[name] = tmp_path / f"{name}.pkl"
        paths[name].write_bytes(build())
    assert paths["shape_only"].stat().st_size <= 150
    child = run_capped(
        f"""
        from densepose_node.weights import WeightsError, load_weights
        for path in {[str(p) for p in paths.values()]!r}:
            try:
                load_weights(path)
                print("LOADED", path)
            except WeightsError as error:
                print(error)
        """,
        cap_bytes=2 << 30,
    )
    assert child.returncode == 0, child.stderr
    lines = child.stdout.splitlines()
    assert len(lines) == len(BOMBS)
    for line, (name, path) in zip(lines, paths.items()):
        expected = BOMB_REFUSALS[name].format(size=path.stat().st_size)
        assert line.startswith(f"{path}: ") and expected in line, (name, line)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in paths.values())  # nothing converted


def test_unknown_tensor_names_are_refused(tmp_path):
    model = tiny_model()
    model["roi_heads.extra.weight"] = np.zeros(4, np.float32)
    path = tmp_path / "extra.pkl"
    path.write_bytes(pickle.dumps({"model": model}))
    with pytest.raises(WeightsError) as error:
        load_weights(path)
    assert str(error.value).startswith(
        f"{path}: unknown tensor(s) ['roi_heads.extra.weight']: not part of a DensePose R-CNN R_50_FPN_s1x "
        "checkpoint; this is not the DensePose model file. Delete it and download it again"
    )
    assert not path.with_suffix(".safetensors").exists()


@pytest.mark.parametrize(
    ("name", "shape", "refusal"),
    [
        (
            "roi_heads.box_head.fc1.weight",
            (64, 785),
            "tensor 'roi_heads.box_head.fc1.weight' declares shape [64, 785]; the R_50_FPN layout needs [64, 784]",
        ),
        (
            "backbone.bottom_up.res4.3.conv2.weight",
            (16, 16, 3),
            "tensor 'backbone.bottom_up.res4.3.conv2.weight' declares shape [16, 16, 3] (rank 3); the R_50_FPN "
            "layout needs rank 4: [16, 16, 3, 3]",
        ),
        (
            "roi_heads.densepose_predictor.index_uv_lowres.bias",
            (24,),
            "tensor 'roi_heads.densepose_predictor.index_uv_lowres.bias' declares shape [24]; the R_50_FPN layout "
            "needs [25]",
        ),
    ],
)
def test_shapes_must_agree_with_the_layout(tmp_path, name, shape, refusal):
    model = tiny_model()
    model[name] = np.zeros(shape, np.float32)
    path = tmp_path / "reshaped.pkl"
    path.write_bytes(pickle.dumps({"model": model}))
    with pytest.raises(WeightsError, match=re.escape(f"{path}: {refusal}")):
        read_model_zoo_pickle(path)


def test_missing_tensors_are_refused(tmp_path):
    model = tiny_model()
    del model["roi_heads.densepose_predictor.u_lowres.bias"]
    path = tmp_path / "partial.pkl"
    path.write_bytes(pickle.dumps({"model": model}))
    with pytest.raises(WeightsError, match=re.escape("1 tensor(s) of the R_50_FPN_s1x layout are missing")):
        read_model_zoo_pickle(path)


def test_declared_bytes_must_match_the_data(tmp_path):
    path = tmp_path / "short.pkl"
    state = (1, (4, 4), np.dtype("f4"), False, b"\0" * 60)
    path.write_bytes(pickle.dumps({"model": {"pixel_mean": _Declared((0,), state)}}))
    with pytest.raises(
        WeightsError, match=r"tensor 'pixel_mean' declares shape \[4, 4\] of float32 \(64 bytes\) but holds 60"
    ):
        read_model_zoo_pickle(path)


def test_the_released_model_layout_has_335_tensors():
    """With the released widths the layout adds up to the published file: 255,709,320 bytes of float32 data
    in the 255,757,821-byte pickle (the rest is names and pickle framing)."""
    layout = concrete_layout(resnet50_fpn_widths(stem=64, res2=256, bottleneck=64, fpn=256, box=1024, head=512))
    assert len(layout) == 335
    assert sum(4 * math.prod(dims) for dims in layout.values()) == 255_709_320


@pytest.mark.parametrize("protocol", [2, 4])
def test_values_survive_every_pickle_protocol_and_memory_order(tiny_pkl, tmp_path, protocol):
    model = {name: tensor.numpy() for name, tensor in read_model_zoo_pickle(tiny_pkl).items()}
    name = "roi_heads.box_head.fc2.weight"
    model[name] = np.asfortranarray(model[name])
    model["roi_heads.box_head.fc2.bias"] = model["roi_heads.box_head.fc2.bias"].astype(np.float64)
    path = tmp_path / f"protocol{protocol}.pkl"
    path.write_bytes(pickle.dumps({"model": model, "__author__": "test"}, protocol=protocol))
    state = read_model_zoo_pickle(path)
    assert all(state[k].dtype == torch.float32 and np.array_equal(state[k].numpy(), model[k]) for k in model)
