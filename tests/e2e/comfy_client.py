"""A small ComfyUI HTTP client for tests (standard library only).

    client = ComfyClient(server.url)
    result = client.run({"1": {"class_type": ..., "inputs": {...}}, ...})   # submit + wait
    data = client.view(result.files()[0])

Validation errors (HTTP 400 with `node_errors`) raise `PromptValidationError`; runtime errors
(`execution_error` in the history) raise `PromptExecutionError`; interrupted prompts raise
`PromptInterrupted`. Every exception carries the server's own message.
"""
from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

JSON = dict[str, Any]
OUTPUT_FILE_KEYS = ("images", "gifs", "videos", "audio")


class ComfyError(RuntimeError):
    """Base class: something the server reported or a request that failed."""


class PromptValidationError(ComfyError):
    """`POST /prompt` answered 400: the prompt failed validation."""

    def __init__(self, status: int, body: JSON) -> None:
        self.status = status
        self.body = body
        self.error: JSON = body.get("error") if isinstance(body.get("error"), dict) else {"message": str(body)}
        self.node_errors: JSON = body.get("node_errors") or {}
        super().__init__(self._describe())

    def _describe(self) -> str:
        parts = [f"HTTP {self.status}: {self.error.get('type', '')}: {self.error.get('message', '')}".rstrip(": ")]
        if self.error.get("details"):
            parts.append(str(self.error["details"]))
        for node_id, info in self.node_errors.items():
            for error in info.get("errors", []):
                extra = error.get("extra_info", {})
                where = f" (input {extra['input_name']!r})" if "input_name" in extra else ""
                parts.append(
                    f"node {node_id} [{info.get('class_type')}] {error.get('type')}: {error.get('message')}"
                    f"{where}: {error.get('details', '')}"
                )
        return "\n".join(parts)

    def error_types(self) -> set[str]:
        """Every `type` in `node_errors` (e.g. value_smaller_than_min, required_input_missing)."""
        return {e.get("type", "") for info in self.node_errors.values() for e in info.get("errors", [])}


class PromptExecutionError(ComfyError):
    """The prompt ran and a node raised: `execution_error` in the history."""

    def __init__(self, prompt_id: str, details: JSON) -> None:
        self.prompt_id = prompt_id
        self.details = details
        self.node_type: str = details.get("node_type", "")
        self.exception_type: str = details.get("exception_type", "")
        self.exception_message: str = details.get("exception_message", "")
        traceback = "".join(details.get("traceback", []))[-2000:]
        super().__init__(
            f"prompt {prompt_id}: node {details.get('node_id')} [{self.node_type}] raised "
            f"{self.exception_type}: {self.exception_message}\n{traceback}".rstrip()
        )


class PromptInterrupted(ComfyError):
    """The prompt was interrupted (`execution_interrupted`)."""


class PromptTimeout(ComfyError):
    """The prompt did not finish in time."""


@dataclass(frozen=True)
class OutputFile:
    node_id: str
    kind: str
    filename: str
    subfolder: str
    type: str


@dataclass
class PromptResult:
    prompt_id: str
    outputs: JSON
    status: JSON
    node_errors: JSON = field(default_factory=dict)

    def files(self, node_id: str | None = None) -> list[OutputFile]:
        """Every file entry (`images`, `gifs`, `videos`, `audio`) of the outputs, optionally of one node."""
        found = []
        for nid, ui in self.outputs.items():
            if node_id is not None and nid != node_id:
                continue
            for kind in OUTPUT_FILE_KEYS:
                for item in ui.get(kind, []) or []:
                    if isinstance(item, dict) and "filename" in item:
                        found.append(OutputFile(
                            nid, kind, item["filename"], item.get("subfolder", ""), item.get("type", "output")
                        ))
        return found


class ComfyClient:
    def __init__(self, base_url: str, timeout: float = 60.0, client_id: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.client_id = client_id or uuid.uuid4().hex

    # --- raw requests --------------------------------------------------------------------------------

    def _request(self, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None
                 ) -> tuple[int, bytes]:
        request = urllib.request.Request(self.base_url + path, data=body, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()
        except (urllib.error.URLError, OSError) as error:
            raise ComfyError(f"{method} {self.base_url + path} failed: {error}") from error

    def get_json(self, path: str) -> Any:
        status, data = self._request("GET", path)
        if status != 200:
            raise ComfyError(f"GET {path}: HTTP {status}: {data[:500]!r}")
        return json.loads(data)

    def post_json(self, path: str, payload: Any) -> tuple[int, Any]:
        status, data = self._request(
            "POST", path, json.dumps(payload).encode(), {"Content-Type": "application/json"}
        )
        try:
            return status, json.loads(data) if data else None
        except json.JSONDecodeError:
            return status, data.decode("utf-8", "replace")

    # --- API -----------------------------------------------------------------------------------------

    def system_stats(self) -> JSON:
        return self.get_json("/system_stats")

    def object_info(self, node_class: str | None = None) -> JSON:
        if node_class is None:
            return self.get_json("/object_info")
        return self.get_json(f"/object_info/{urllib.parse.quote(node_class)}").get(node_class, {})

    def workflow_templates(self) -> JSON | None:
        """`/api/workflow_templates` ({pack folder: [template names]}); None on servers without it (2024)."""
        status, data = self._request("GET", "/api/workflow_templates")
        if status == 404:
            return None
        if status != 200:
            raise ComfyError(f"GET /api/workflow_templates: HTTP {status}: {data[:500]!r}")
        return json.loads(data)

    def workflow_template(self, pack: str, name: str) -> JSON:
        """One template as the Browse Templates dialog fetches it."""
        return self.get_json(f"/api/workflow_templates/{urllib.parse.quote(pack)}/{urllib.parse.quote(name)}.json")

    def submit(self, prompt: JSON, workflow: JSON | None = None) -> tuple[str, JSON]:
        """POST /prompt; returns (prompt_id, node_errors of outputs that were dropped)."""
        payload: JSON = {"prompt": prompt, "client_id": self.client_id}
        if workflow is not None:
            payload["extra_data"] = {"extra_pnginfo": {"workflow": workflow}}
        status, body = self.post_json("/prompt", payload)
        if status != 200 or not isinstance(body, dict) or "prompt_id" not in body:
            raise PromptValidationError(status, body if isinstance(body, dict) else {"error": {"message": body}})
        node_errors = body.get("node_errors") or {}
        if node_errors:
            warnings.warn(f"some outputs failed validation and were dropped: {node_errors}", stacklevel=2)
        return body["prompt_id"], node_errors

    def history(self, prompt_id: str) -> JSON | None:
        """The history entry of a finished prompt, or None while it is queued or running."""
        return self.get_json(f"/history/{urllib.parse.quote(prompt_id)}").get(prompt_id)

    def wait(self, prompt_id: str, timeout: float = 600.0, poll: float = 0.25) -> PromptResult:
        deadline = time.monotonic() + timeout
        while (entry := self.history(prompt_id)) is None:
            if time.monotonic() > deadline:
                raise PromptTimeout(f"prompt {prompt_id} did not finish within {timeout:.0f} s")
            time.sleep(poll)
        status: JSON = entry.get("status") or {}
        for event, data in status.get("messages", []):
            if event == "execution_error":
                raise PromptExecutionError(prompt_id, data)
            if event == "execution_interrupted":
                raise PromptInterrupted(f"prompt {prompt_id} was interrupted at node {data.get('node_id')}")
        if status and status.get("status_str") != "success":
            raise ComfyError(f"prompt {prompt_id} finished with status {status}")
        return PromptResult(prompt_id, entry.get("outputs") or {}, status)

    def run(self, prompt: JSON, workflow: JSON | None = None, timeout: float = 600.0) -> PromptResult:
        prompt_id, node_errors = self.submit(prompt, workflow)
        result = self.wait(prompt_id, timeout=timeout)
        result.node_errors = node_errors
        return result

    def view(self, file: OutputFile) -> bytes:
        query = urllib.parse.urlencode({"filename": file.filename, "subfolder": file.subfolder, "type": file.type})
        status, data = self._request("GET", f"/view?{query}")
        if status != 200:
            raise ComfyError(f"GET /view {file}: HTTP {status}")
        return data

    def download_outputs(self, result: PromptResult, dest: Path) -> list[Path]:
        dest.mkdir(parents=True, exist_ok=True)
        paths = []
        for file in result.files():
            path = dest / file.filename
            path.write_bytes(self.view(file))
            paths.append(path)
        return paths

    def interrupt(self, prompt_id: str | None = None) -> None:
        """POST /interrupt (newer servers interrupt only `prompt_id` when given; old ones the running one)."""
        status, body = self.post_json("/interrupt", {"prompt_id": prompt_id} if prompt_id else {})
        if status != 200:
            raise ComfyError(f"POST /interrupt: HTTP {status}: {body}")

    def queue(self) -> JSON:
        return self.get_json("/queue")

    def upload(self, path: Path, subfolder: str = "", overwrite: bool = True) -> str:
        """POST /upload/image (also used for videos); returns the name to put in a combo input."""
        boundary = uuid.uuid4().hex
        fields = {"subfolder": subfolder, "type": "input", "overwrite": "true" if overwrite else "false"}
        chunks = [
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
            for name, value in fields.items()
        ]
        chunks.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="{path.name}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n".encode() + path.read_bytes() + b"\r\n"
        )
        chunks.append(f"--{boundary}--\r\n".encode())
        status, body = self._request(
            "POST", "/upload/image", b"".join(chunks), {"Content-Type": f"multipart/form-data; boundary={boundary}"}
        )
        if status != 200:
            raise ComfyError(f"upload of {path} failed: HTTP {status}: {body[:500]!r}")
        info = json.loads(body)
        return f"{info['subfolder']}/{info['name']}" if info.get("subfolder") else info["name"]
