"""Downloads against a local HTTP server: resume after a cut, corrupted files rejected, offline error text."""

from __future__ import annotations

import hashlib
import http.server
import socket
import threading
from dataclasses import replace

import pytest

from magicanimate_core.download import (
    ChecksumError,
    DownloadError,
    ModelsUnavailableError,
    download_all,
    download_file,
)
from magicanimate_core.registry import ModelFile, files_for

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB


class RangeHandler(http.server.BaseHTTPRequestHandler):
    files: dict[str, bytes] = {}
    cut_once: set[str] = set()
    ranges_seen: list[str | None] = []

    def do_GET(self):  # noqa: N802 - http.server API
        body = self.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        header = self.headers.get("Range")
        self.ranges_seen.append(header)
        start = int(header.removeprefix("bytes=").split("-")[0]) if header else 0
        if start >= len(body):
            self.send_error(416)
            return
        self.send_response(206 if header else 200)
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        if self.path in self.cut_once:
            self.cut_once.discard(self.path)
            self.wfile.write(body[start : start + len(body) // 3])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(body[start:])

    def log_message(self, *args):
        pass


@pytest.fixture()
def server():
    RangeHandler.files, RangeHandler.cut_once, RangeHandler.ranges_seen = {}, set(), []
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RangeHandler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", RangeHandler
    httpd.shutdown()
    httpd.server_close()


def entry(size: int | None, sha256: str | None) -> ModelFile:
    return ModelFile(
        id="test/weights",
        component="vae",
        license="MIT",
        target="t/weights.bin",
        path="weights.bin",
        size=size,
        sha256=sha256,
        hf_repo="org/repo",
        revision="abc",
    )


def test_resume_after_cut_connection(server, tmp_path):
    base, handler = server
    handler.files["/weights.bin"] = PAYLOAD
    handler.cut_once.add("/weights.bin")
    item = entry(len(PAYLOAD), hashlib.sha256(PAYLOAD).hexdigest())
    target = tmp_path / "weights.bin"
    with pytest.raises(DownloadError, match="resume"):
        download_file(item, f"{base}/weights.bin", target)
    part = tmp_path / "weights.bin.part"
    assert not target.exists() and 0 < part.stat().st_size < len(PAYLOAD)
    seen = []
    result = download_file(item, f"{base}/weights.bin", target, progress=seen.append)
    assert handler.ranges_seen[-1] == f"bytes={len(PAYLOAD) // 3}-"
    assert result.verified and target.read_bytes() == PAYLOAD and not part.exists()
    assert seen[-1].done == seen[-1].total == len(PAYLOAD)
    assert (tmp_path / "weights.bin.sha256").read_text().startswith(result.sha256)


def test_corrupted_file_is_rejected_and_removed(server, tmp_path):
    base, handler = server
    handler.files["/weights.bin"] = PAYLOAD[:-1] + b"\x00"
    item = entry(len(PAYLOAD), hashlib.sha256(PAYLOAD).hexdigest())
    with pytest.raises(ChecksumError, match=r"weights\.bin has sha256 .* expected .*removed"):
        download_file(item, f"{base}/weights.bin", tmp_path / "weights.bin")
    assert list(tmp_path.iterdir()) == []


def test_file_without_published_hash_is_never_verified(server, tmp_path):
    base, handler = server
    handler.files["/weights.bin"] = PAYLOAD
    with pytest.warns(UserWarning, match="cannot be verified"):
        result = download_file(entry(None, None), f"{base}/weights.bin", tmp_path / "weights.bin")
    assert not result.verified and result.sha256 == hashlib.sha256(PAYLOAD).hexdigest()
    assert "UNVERIFIED" in (tmp_path / "weights.bin.sha256").read_text()


def test_endpoint_override_downloads_only_listed_files(server, tmp_path):
    base, handler = server
    vae_files = files_for(["vae"])
    for item in vae_files:
        handler.files[f"/{item.hf_repo}/resolve/{item.revision}/{item.path}"] = PAYLOAD
    local = [replace(item, size=len(PAYLOAD), sha256=hashlib.sha256(PAYLOAD).hexdigest()) for item in vae_files]
    results = download_all(local, tmp_path, "tiny", hf_endpoint=base)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()) == sorted(
        [f"magicanimate/tiny/sd-vae-ft-mse/{name}" for name in ("config.json", "diffusion_pytorch_model.safetensors")]
        + [
            f"magicanimate/tiny/sd-vae-ft-mse/{name}.sha256"
            for name in ("config.json", "diffusion_pytorch_model.safetensors")
        ]
    )
    assert all(r.verified for r in results)
    assert download_all(local, tmp_path, "tiny", hf_endpoint=base) == []  # present files are skipped


def test_offline_error_lists_files_urls_and_folder(tmp_path):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    endpoint = f"http://127.0.0.1:{port}"
    wanted = files_for(["appearance_encoder", "vae"])
    with pytest.raises(ModelsUnavailableError) as caught:
        download_all(wanted, tmp_path, "default", hf_endpoint=endpoint, timeout=5)
    text = str(caught.value)
    assert str(tmp_path) in text and "refused" in text.lower()
    for item in wanted:
        assert item.target.format(model="default") in text
        assert f"{endpoint}/{item.hf_repo}/resolve/{item.revision}/{item.path}" in text
    assert not any(tmp_path.rglob("*.part"))
