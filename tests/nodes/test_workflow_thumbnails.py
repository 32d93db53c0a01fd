"""Every shipped workflow has a small template thumbnail (Browse Templates shows `workflows/<name>.jpg`)."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

WORKFLOWS = Path(__file__).resolve().parents[2] / "workflows"


def test_every_workflow_has_a_small_thumbnail():
    names = sorted(p.stem for p in WORKFLOWS.glob("*.json"))
    assert names
    for name in names:
        thumbnail = WORKFLOWS / f"{name}.jpg"
        assert thumbnail.is_file(), f"{thumbnail} missing: run `python -m bench.thumbnails`"
        assert thumbnail.stat().st_size < 64 * 1024
        with Image.open(thumbnail) as image:
            assert image.format == "JPEG" and image.size == (640, 360)
