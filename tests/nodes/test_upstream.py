"""Refusals of a bad IMAGE batch name its producer from ComfyUI's hidden PROMPT and UNIQUE_ID."""

from __future__ import annotations

import importlib

import pytest

PROMPT = {
    "4": {"class_type": "Careless", "inputs": {}, "_meta": {"title": "My Loader"}},
    "5": {"class_type": "CarelessToo", "inputs": {}},
    "9": {"class_type": "MagicAnimate_Sampler", "inputs": {"motion": ["4", 0], "reference": ["5", 0], "seed": 1}},
}


@pytest.fixture
def source_of(pack):
    return importlib.import_module(f"{pack.__name__}.nodes.upstream").source_of


def test_the_producer_is_named_by_id_and_title_or_class(source_of):
    assert source_of("motion", "the Sampler", PROMPT, "9") == (
        "motion (from node 4, 'My Loader', connected to the Sampler's 'motion' input)"
    )
    assert source_of("reference", "the Sampler", PROMPT, "9") == (
        "reference (from node 5, 'CarelessToo', connected to the Sampler's 'reference' input)"
    )


def test_without_the_prompt_only_the_socket_is_named(source_of):
    generic = "motion (from the node connected to the Sampler's 'motion' input)"
    assert source_of("motion", "the Sampler", None, None) == generic
    assert source_of("motion", "the Sampler", PROMPT, "expanded-node-7") == generic
    assert source_of("seed", "the Sampler", PROMPT, "9").startswith("seed (from the node connected")
