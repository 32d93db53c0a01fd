"""`python -m magicanimate_core verify`: small fake files against an overriding registry."""

from __future__ import annotations

import hashlib
import json

import pytest

from magicanimate_core import registry, verify
from magicanimate_core.cli import main

GOOD = b"the published weights\n"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def entry(file_id: str, target: str, size: int | None, digest: str | None, component: str = "core", **extra) -> dict:
    notes = {} if digest else {"sha256_note": "not published"}
    return {"id": file_id, "component": component, "source": "local", "path": target.rsplit("/", 1)[-1],
            "target": target, "size": size, "sha256": digest, **notes, **extra}  # fmt: skip


@pytest.fixture
def fake_registry(tmp_path, monkeypatch):
    files = [
        entry("good", "magicanimate/{model}/good.safetensors", len(GOOD), sha(GOOD)),
        entry("short", "magicanimate/{model}/short.bin", len(GOOD), sha(GOOD)),
        entry("flipped", "magicanimate/{model}/flipped.ckpt", None, sha(GOOD), size_note="about 22 B"),
        entry("config", "magicanimate/{model}/config.json", None, None, size_note="about 2 B"),
        entry("absent", "magicanimate/{model}/absent.safetensors", 5, sha(b"12345")),
        entry(
            "temporal",
            "magicanimate/{model}/temporal.ckpt",
            None,
            sha(b"ckpt"),
            size_note="about 4 B",
            alternative="magicanimate/{model}/temporal.safetensors",
        ),
        entry("pose", "densepose/pose.pkl", 4, sha(b"pose"), component="extra"),
    ]
    data = {
        "format_version": 1,
        "default_model_name": "default",
        "components": {
            name: {"title": name, "license": "MIT", "license_url": "https://example.invalid", "required": required}
            for name, required in (("core", True), ("extra", False))
        },
        "sources": {"local": {"url": "https://example.invalid/file"}},
        "files": files,
    }
    path = tmp_path / "registry.json"
    path.write_text(json.dumps(data))
    monkeypatch.setattr(registry, "REGISTRY_PATH", path)
    registry._raw.cache_clear()
    yield
    registry._raw.cache_clear()


def models_folder(tmp_path, name: str = "mine"):
    root = tmp_path / "models"
    model = root / "magicanimate" / name
    model.mkdir(parents=True)
    (model / "good.safetensors").write_bytes(GOOD)
    (model / "short.bin").write_bytes(GOOD[:10])
    (model / "flipped.ckpt").write_bytes(GOOD.replace(b"w", b"W"))
    (model / "config.json").write_bytes(b"{}")
    (model / "temporal.safetensors").write_bytes(b"converted")
    return root


def test_verify_prints_a_table_and_fails_on_mismatches(fake_registry, tmp_path, capsys, monkeypatch):
    root = models_folder(tmp_path)
    hashed = []
    real = verify.sha256_file
    monkeypatch.setattr(verify, "sha256_file", lambda path, **kw: hashed.append(path.name) or real(path, **kw))
    assert main(["verify", "--models-dir", str(root)]) == 1
    out, err = capsys.readouterr()
    assert out.splitlines() == [
        "status         file                                    detail",
        "ok             magicanimate/mine/good.safetensors      22 B",
        "size mismatch  magicanimate/mine/short.bin             10 bytes, expected 22 (truncated or interrupted "
        "download)",
        f"hash mismatch  magicanimate/mine/flipped.ckpt          sha256 {sha(GOOD.replace(b'w', b'W'))}, expected "
        f"{sha(GOOD)} (corrupted)",
        f"unpinned       magicanimate/mine/config.json           2 B, sha256 {sha(b'{}')} (no published hash)",
        "missing        magicanimate/mine/absent.safetensors",
        "unpinned       magicanimate/mine/temporal.safetensors  only the locally converted temporal.safetensors "
        "is present; it has no published hash",
        "missing        densepose/pose.pkl                      optional",
        "1 ok, 1 size mismatch, 1 hash mismatch, 2 missing, 2 unpinned",
        "2 file(s) do not match the published ones: delete them and run "
        f"`python -m magicanimate_core download --models-dir {root}` to fetch them again",
    ]
    assert "short.bin" not in hashed  # size first: a truncated file is not hashed
    assert "good: [##############################] 22 B / 22 B" in err


def test_verify_passes_when_every_present_file_matches(fake_registry, tmp_path, capsys):
    root = models_folder(tmp_path)
    model = root / "magicanimate" / "mine"
    (model / "short.bin").write_bytes(GOOD)
    (model / "flipped.ckpt").write_bytes(GOOD)
    (root / "densepose").mkdir()
    (root / "densepose" / "pose.pkl").write_bytes(b"pose")
    assert main(["verify", "--models-dir", str(root), "--model", "mine"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[-2:] == [
        "4 ok, 1 missing, 2 unpinned",
        f"fetch the missing files with `python -m magicanimate_core download --models-dir {root}`",
    ]


def test_every_model_folder_is_checked(fake_registry, tmp_path, capsys):
    root = models_folder(tmp_path, "first")
    (root / "magicanimate" / "second").mkdir()
    assert main(["verify", "--models-dir", str(root)]) == 1
    out = capsys.readouterr().out
    assert "magicanimate/second/good.safetensors" in out and "magicanimate/first/good.safetensors" in out
    assert out.count("densepose/pose.pkl") == 1
