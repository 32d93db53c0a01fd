"""POST /interrupt stops a running MagicAnimate_Sampler between model calls, and nothing is saved."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from comfy_client import ComfyClient, PromptInterrupted
from comfy_server import ComfyServer
from pack_inputs import install
from prompts import reference, sampler_prompt, video

STEPS = 200  # minutes of work on a CPU: finishing early proves the sampler itself stopped


def test_interrupt_stops_the_sampler(comfy_server: ComfyServer, comfy_client: ComfyClient, sample_inputs: Path):
    install(comfy_server, sample_inputs)
    prompt = sampler_prompt(reference(), video(cap=0), "interrupted/clip", seed=7, steps=STEPS, fps=["2", 1])
    comfy_client.run({**prompt, "4": {**prompt["4"], "inputs": {**prompt["4"]["inputs"], "steps": 1}}})
    # the loaders' outputs are now cached: in the long run below only the sampler executes
    prompt_id, _ = comfy_client.submit(prompt)
    deadline = time.monotonic() + 120
    while not any(item[1] == prompt_id for item in comfy_client.queue()["queue_running"]):
        assert time.monotonic() < deadline, "the prompt never started running"
        time.sleep(0.2)
    time.sleep(2)
    assert comfy_client.history(prompt_id) is None, "the sampler finished before it could be interrupted"
    interrupted_at = time.monotonic()
    comfy_client.interrupt(prompt_id)
    with pytest.raises(PromptInterrupted, match="interrupted at node 4"):
        comfy_client.wait(prompt_id, timeout=120)
    assert time.monotonic() - interrupted_at < 60
    assert sorted(p.name for p in (comfy_server.output_dir / "interrupted").iterdir()) == ["clip_00001_.mp4"]
