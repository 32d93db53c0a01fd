"""Template thumbnails: `python -m bench.thumbnails` writes `workflows/<name>.jpg` for every shipped workflow.

Each card shows a synthetic DensePose frame (the kind of motion MagicAnimate follows) beside the
workflow's own graph, read from `workflows/api/<name>.json`: one box per node, columns in execution
order, arrows for links. *Workflow -> Browse Templates* shows the card next to the template's name.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from densepose_node.render import palette

from .bodies import Build, dance, draw

WORKFLOWS = Path(__file__).resolve().parents[1] / "workflows"
SIZE = (640, 360)
BACKGROUND, BOX, TEXT, LINE = (24, 24, 32), (58, 60, 78), (235, 235, 240), (150, 150, 170)
BOX_H = 34


def densepose_frame(size: int) -> Image.Image:
    """A DensePose body in MagicAnimate's colours (viridis parts on the purple background)."""
    pose = dance(8, (size / 2, size * 0.55), size * 0.8)[3]
    labels = draw(Build(unit=size * 0.8), pose, (size, size))
    return Image.fromarray(palette("viridis")[labels])


def columns(prompt: dict) -> list[list[str]]:
    """Node ids grouped by their depth in the graph (longest chain of links from a node without inputs)."""
    sources = {
        node_id: [v[0] for v in node["inputs"].values() if isinstance(v, list) and len(v) == 2 and v[0] in prompt]
        for node_id, node in prompt.items()
    }
    depth: dict[str, int] = {}

    def level(node_id: str) -> int:
        if node_id not in depth:
            depth[node_id] = 1 + max((level(s) for s in sources[node_id]), default=-1)
        return depth[node_id]

    for node_id in prompt:
        level(node_id)
    return [[n for n in prompt if depth[n] == d] for d in range(max(depth.values()) + 1)]


def short_title(title: str) -> str:
    return title.replace(" (MagicAnimate)", "").replace("MagicAnimate ", "")


def wrap(title: str, width: int) -> str:
    """`title` on at most two lines of about `width` characters."""
    words, lines = title.split(), [""]
    for word in words:
        if lines[-1] and len(lines[-1]) + 1 + len(word) > width and len(lines) < 2:
            lines.append(word)
        else:
            lines[-1] = f"{lines[-1]} {word}".strip()
    return "\n".join(lines)


def card(prompt: dict) -> Image.Image:
    image = Image.new("RGB", SIZE, BACKGROUND)
    panel = 168
    image.paste(densepose_frame(panel), (12, (SIZE[1] - panel) // 2))
    canvas, font = ImageDraw.Draw(image), ImageFont.load_default()
    groups = columns(prompt)
    left, right, gap = panel + 28, SIZE[0] - 10, 16
    box_w = min(130, (right - left - gap * (len(groups) - 1)) / len(groups))
    step = box_w + gap if len(groups) > 1 else 0
    boxes: dict[str, tuple[float, float]] = {}
    for column, ids in enumerate(groups):
        spacing = SIZE[1] / (len(ids) + 1)
        for row, node_id in enumerate(ids):
            boxes[node_id] = (left + column * step, spacing * (row + 1) - BOX_H / 2)
    for node_id, node in prompt.items():  # links under the boxes
        for value in node["inputs"].values():
            if isinstance(value, list) and len(value) == 2 and value[0] in boxes:
                (x0, y0), (x1, y1) = boxes[value[0]], boxes[node_id]
                canvas.line((x0 + box_w, y0 + BOX_H / 2, x1, y1 + BOX_H / 2), fill=LINE, width=2)
                canvas.ellipse((x1 - 3, y1 + BOX_H / 2 - 3, x1 + 3, y1 + BOX_H / 2 + 3), fill=LINE)
    for node_id, (x, y) in boxes.items():
        canvas.rounded_rectangle((x, y, x + box_w, y + BOX_H), radius=6, fill=BOX)
        title = wrap(short_title(prompt[node_id]["_meta"]["title"]), int(box_w // 6.5))
        canvas.multiline_text((x + box_w / 2, y + BOX_H / 2), title, fill=TEXT, font=font, anchor="mm", align="center")
    return image


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.thumbnails", description=__doc__.splitlines()[0])
    parser.add_argument("--quality", type=int, default=80, help="JPEG quality (default 80)")
    args = parser.parse_args(argv)
    for api in sorted((WORKFLOWS / "api").glob("*.json")):
        out = WORKFLOWS / f"{api.stem}.jpg"
        card(json.loads(api.read_text())).save(out, quality=args.quality, optimize=True)
        print(f"{out} ({out.stat().st_size // 1024} KiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
