"""Which node feeds an input, for refusals of a bad IMAGE batch (ComfyUI hands nodes the prompt and their id)."""

from __future__ import annotations


def source_of(input_name: str, node_title: str, prompt: dict | None, unique_id: str | None) -> str:
    """`motion (from node 7, 'My Node', connected to the Sampler's 'motion' input)`.

    Without the prompt (tests, other front ends) or for a node ComfyUI created at run time, the producer is
    described by its socket only: `motion (from the node connected to the Sampler's 'motion' input)`.
    """
    socket = f"connected to {node_title}'s '{input_name}' input"
    prompt = prompt if isinstance(prompt, dict) else {}
    link = (prompt.get(str(unique_id)) or {}).get("inputs", {}).get(input_name)
    source = prompt.get(str(link[0])) if isinstance(link, list) and link else None
    if not isinstance(source, dict):
        return f"{input_name} (from the node {socket})"
    title = (source.get("_meta") or {}).get("title") or source.get("class_type", "?")
    return f"{input_name} (from node {link[0]}, '{title}', {socket})"
