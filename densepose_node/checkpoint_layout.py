"""The 335 tensors of a DensePose R-CNN R_50_FPN_s1x checkpoint: names, ranks and width-independent shape rules.

Widths (channel counts) are symbols bound by the first tensor that uses them and checked in every later one,
so the released model and width-reduced copies pass while a tensor whose shape contradicts the others (or
the fixed kernel sizes, class counts and anchor counts) is refused before anything is allocated.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

Dim = int | str | tuple[str, int]  # a fixed size, a width symbol, or a width times a factor
Layout = dict[str, tuple[Dim, ...]]

STAGE_BLOCKS = {2: 3, 3: 4, 4: 6, 5: 3}  # bottleneck blocks per ResNet-50 stage
# Buffers some detectron2 versions saved beside the weights; fixed by the architecture, never widths.
OPTIONAL: Layout = {
    "pixel_mean": (3, 1, 1),
    "pixel_std": (3, 1, 1),
    **{f"proposal_generator.anchor_generator.cell_anchors.{level}": (3, 4) for level in range(5)},
}


def _conv(layout: Layout, name: str, out: Dim, inp: Dim, kernel: int, *, norm: bool = False, bias: bool = True) -> None:
    layout[f"{name}.weight"] = (out, inp, kernel, kernel)
    if bias:
        layout[f"{name}.bias"] = (out,)
    if norm:  # FrozenBatchNorm2d
        for part in ("weight", "bias", "running_mean", "running_var"):
            layout[f"{name}.norm.{part}"] = (out,)


def expected_layout() -> Layout:
    """Name -> symbolic shape of every tensor of the checkpoint, in an order where widths are bound first."""
    layout: Layout = {}
    bottom_up = "backbone.bottom_up"
    _conv(layout, f"{bottom_up}.stem.conv1", "stem width", 3, 7, norm=True, bias=False)
    previous, fpn = "stem width", "FPN width"
    for stage, blocks in STAGE_BLOCKS.items():
        inner, out = f"res{stage} bottleneck width", f"res{stage} output width"
        for block in range(blocks):
            prefix = f"{bottom_up}.res{stage}.{block}"
            inp = previous if block == 0 else out
            _conv(layout, f"{prefix}.conv1", inner, inp, 1, norm=True, bias=False)
            _conv(layout, f"{prefix}.conv2", inner, inner, 3, norm=True, bias=False)
            _conv(layout, f"{prefix}.conv3", out, inner, 1, norm=True, bias=False)
            if block == 0:
                _conv(layout, f"{prefix}.shortcut", out, inp, 1, norm=True, bias=False)
        previous = out
        _conv(layout, f"backbone.fpn_lateral{stage}", fpn, out, 1)
        _conv(layout, f"backbone.fpn_output{stage}", fpn, fpn, 3)
    rpn = "proposal_generator.rpn_head"
    _conv(layout, f"{rpn}.conv", fpn, fpn, 3)
    _conv(layout, f"{rpn}.objectness_logits", 3, fpn, 1)  # 3 anchors per position
    _conv(layout, f"{rpn}.anchor_deltas", 12, fpn, 1)  # 4 box deltas per anchor
    box = "box head width"
    layout["roi_heads.box_head.fc1.weight"] = (box, (fpn, 49))  # 7x7 pooled FPN features
    layout["roi_heads.box_head.fc1.bias"] = (box,)
    layout["roi_heads.box_head.fc2.weight"] = (box, box)
    layout["roi_heads.box_head.fc2.bias"] = (box,)
    for name, out in (("cls_score", 2), ("bbox_pred", 4)):  # person + background; class-specific box deltas
        layout[f"roi_heads.box_predictor.{name}.weight"] = (out, box)
        layout[f"roi_heads.box_predictor.{name}.bias"] = (out,)
    decoder = "decoder width"
    for level, convs in ((2, 1), (3, 1), (4, 2), (5, 3)):  # up-sampling heads to stride 4
        for index in range(convs):
            _conv(layout, f"roi_heads.decoder.p{level}.{2 * index}", decoder, fpn if index == 0 else decoder, 3)
    _conv(layout, "roi_heads.decoder.predictor", "decoder output width", decoder, 1)
    head = "DensePose head width"
    for index in range(1, 9):
        _conv(
            layout,
            f"roi_heads.densepose_head.body_conv_fcn{index}",
            head,
            "decoder output width" if index == 1 else head,
            3,
        )
    for name, out in (("ann_index_lowres", 2), ("index_uv_lowres", 25), ("u_lowres", 25), ("v_lowres", 25)):
        layout[f"roi_heads.densepose_predictor.{name}.weight"] = (head, out, 4, 4)  # ConvTranspose2d: [in, out, k, k]
        layout[f"roi_heads.densepose_predictor.{name}.bias"] = (out,)
    return layout


def resnet50_fpn_widths(stem: int, res2: int, bottleneck: int, fpn: int, box: int, head: int) -> dict[str, int]:
    """Concrete widths for `concrete_layout`: ResNet stages double per stage from res2 (output) and
    `bottleneck` (res2's inner width); the DensePose decoder runs at the FPN width."""
    widths = {"stem width": stem, "FPN width": fpn, "box head width": box, "DensePose head width": head}
    widths |= {"decoder width": fpn, "decoder output width": fpn}
    for index, stage in enumerate(STAGE_BLOCKS):
        widths |= {f"res{stage} bottleneck width": bottleneck * 2**index, f"res{stage} output width": res2 * 2**index}
    return widths


def concrete_layout(widths: Mapping[str, int]) -> dict[str, tuple[int, ...]]:
    """`expected_layout` with every width symbol replaced by its size in `widths` (same names, same order)."""

    def size(dim: Dim) -> int:
        if isinstance(dim, int):
            return dim
        if isinstance(dim, str):
            return widths[dim]
        return widths[dim[0]] * dim[1]

    return {name: tuple(size(dim) for dim in dims) for name, dims in expected_layout().items()}


def _render(dims: Sequence[Dim], widths: Mapping[str, int]) -> str:
    def one(dim: Dim) -> str:
        if isinstance(dim, int):
            return str(dim)
        if isinstance(dim, str):
            return str(widths[dim]) if dim in widths else dim
        symbol, factor = dim
        return str(widths[symbol] * factor) if symbol in widths else f"{factor} x {symbol}"

    return "[" + ", ".join(one(dim) for dim in dims) + "]"


def layout_problem(shapes: Mapping[str, tuple[int, ...]]) -> str | None:
    """The first way `shapes` (name -> declared shape) departs from the R_50_FPN layout, in words; None if none."""
    layout = expected_layout()
    unknown = sorted(name for name in shapes if name not in layout and name not in OPTIONAL)
    if unknown:
        return f"unknown tensor(s) {unknown[:5]}: not part of a DensePose R-CNN R_50_FPN_s1x checkpoint"
    missing = [name for name in layout if name not in shapes]
    if missing:
        return f"{len(missing)} tensor(s) of the R_50_FPN_s1x layout are missing (first: {missing[:5]})"
    for name, fixed in OPTIONAL.items():
        if name in shapes and tuple(shapes[name]) != fixed:
            return f"tensor {name!r} declares shape {list(shapes[name])}; it must be {list(fixed)}"
    widths: dict[str, int] = {}
    for name, dims in layout.items():
        shape = tuple(shapes[name])
        if len(shape) != len(dims):
            return (
                f"tensor {name!r} declares shape {list(shape)} (rank {len(shape)}); the R_50_FPN layout needs "
                f"rank {len(dims)}: {_render(dims, widths)}"
            )
        for size, dim in zip(shape, dims):
            if isinstance(dim, int):
                fits = size == dim
            else:
                symbol, factor = (dim, 1) if isinstance(dim, str) else dim
                if symbol not in widths and size >= factor and size % factor == 0:
                    widths[symbol] = size // factor
                fits = symbol in widths and size == widths[symbol] * factor
            if not fits:
                return (
                    f"tensor {name!r} declares shape {list(shape)}; the R_50_FPN layout needs "
                    f"{_render(dims, widths)} (widths as set by the tensors before it)"
                )
    return None
