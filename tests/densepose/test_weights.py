"""Weights: allow-list unpickling, clear errors for bad files, one-time safetensors conversion."""

from __future__ import annotations

import os
import pickle
import shutil

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from densepose_node.weights import (
    WEIGHTS_FILENAME,
    WEIGHTS_LICENSE,
    WEIGHTS_URL,
    WeightsError,
    load_weights,
    read_model_zoo_pickle,
)


class _Exploit:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture
def tiny_pkl(golden_dir, tmp_path):
    path = tmp_path / "tiny_densepose.pkl"
    shutil.copy(golden_dir / "densepose" / "weights" / "tiny_densepose.pkl", path)
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


def test_conversion_once_then_reused(tiny_pkl, golden_dir):
    reference = load_file(golden_dir / "densepose" / "weights" / "tiny_densepose.safetensors")
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
