"""Per-layer anatomy of a network: output shape, parameters, receptive field, MACs.

One dummy forward pass of a real (random-weight) model at its input size, watched by
forward hooks on every leaf module (shapes, parameters, MACs, names) and by a
``TorchFunctionMode`` that carries each tensor's receptive field through the functional
ops hooks cannot see (ResNet's residual ``+=``, SqueezeNet's ``torch.cat``, ``flatten``):
a unit after a merge has the larger of its branches' fields.

What is counted:

* parameters: every leaf module's own parameters (counted once even if the module is
  called several times, like ResNet's shared ReLU); the sum equals the model's total.
* MACs: multiply-accumulates of convolutions (``out_elems * D/groups * k*k``) and
  fully-connected layers (``out * in``) for one image; biases, BatchNorm, activations and
  pooling are not counted. This is what torchvision's ``meta["_ops"]`` counts (GMACs),
  which the tests check against.
* receptive field / jump: side of the input window one output unit sees, and the input
  distance between neighbouring units (product of strides). Fully-connected layers and
  global pooling see the whole image (left blank).

The model is built on the meta device and materialised with zero weights
(:func:`zero_model`): counting needs shapes, not values, and skipping VGG16's random
init of 138 M weights saves seconds per run.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from transferlab.errors import UserError
from transferlab.inside.convarith import ReceptiveField, fc_equivalent_weights
from transferlab.models.registry import get_arch

POOLS = (nn.MaxPool2d, nn.AvgPool2d)
ADAPTIVE = (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)


@dataclasses.dataclass(frozen=True)
class LayerRow:
    """One call of one leaf module in the forward pass."""

    layer: str  # module path, e.g. features.2
    name: str  # the course's name (conv1_2, pool1, fc6) where there is one, else ""
    type: str
    output_shape: tuple[int, ...]  # per image
    params: int
    macs: int
    rf: float | None  # receptive field side in input pixels (None: the whole image)
    jump: float | None
    fc_equivalent_params: int | None  # conv layers: an FC layer with the same in/out shapes


@dataclasses.dataclass(frozen=True)
class Inspection:
    """The table and its totals."""

    input_size: int
    rows: list[LayerRow]
    params: int  # all parameters of the model
    params_fc: int  # in nn.Linear layers
    params_conv: int  # in nn.Conv2d layers
    macs: int

    def totals(self) -> dict[str, Any]:
        return {
            "input_size": self.input_size,
            "params": self.params,
            "params_fc": self.params_fc,
            "params_conv": self.params_conv,
            "macs": self.macs,
            "gmacs": round(self.macs / 1e9, 4),
            "layers": len(self.rows),
        }

    def table(self) -> list[dict[str, Any]]:
        """Rows as plain dicts (output shape as ``CxHxW``), for CSV / JSON / the report."""
        return [
            {
                "layer": r.layer,
                "name": r.name,
                "type": r.type,
                "output_shape": "x".join(str(d) for d in r.output_shape),
                "params": r.params,
                "macs": r.macs,
                "rf": r.rf,
                "jump": r.jump,
                "fc_equivalent_params": r.fc_equivalent_params,
            }
            for r in self.rows
        ]


def _tensors(obj: Any) -> Iterator[torch.Tensor]:
    if isinstance(obj, torch.Tensor):
        yield obj
    elif isinstance(obj, list | tuple):
        for item in obj:
            yield from _tensors(item)
    elif isinstance(obj, dict):
        for item in obj.values():
            yield from _tensors(item)


class _FieldTracker(TorchFunctionMode):
    """Carries a :class:`ReceptiveField` per tensor through every torch function call."""

    def __init__(self) -> None:
        super().__init__()
        self.fields: dict[int, tuple[torch.Tensor, ReceptiveField | None]] = {}

    def get(self, t: torch.Tensor) -> ReceptiveField | None:
        entry = self.fields.get(id(t))
        return entry[1] if entry is not None and entry[0] is t else None

    def known(self, t: torch.Tensor) -> bool:
        entry = self.fields.get(id(t))
        return entry is not None and entry[0] is t

    def set(self, t: torch.Tensor, field: ReceptiveField | None) -> None:
        self.fields[id(t)] = (t, field)  # keeping t alive keeps id(t) unique

    def __torch_function__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        inputs = [t for t in _tensors((args, kwargs or {})) if self.known(t)]
        if inputs:
            fields = [self.get(t) for t in inputs]
            merged: ReceptiveField | None = None
            if all(f is not None for f in fields):
                merged = fields[0]
                for f in fields[1:]:
                    merged = merged.merge(f)
            for t in _tensors(out):
                self.set(t, merged)
        return out


def _pair(v: int | tuple[int, ...]) -> int:
    """Square kernels/strides only (all the study's networks); the first entry otherwise."""
    return int(v[0] if isinstance(v, tuple | list) else v)


def _layer_field(module: nn.Module, field: ReceptiveField | None, x: torch.Tensor, y: torch.Tensor):
    if field is None:
        return None
    if isinstance(module, nn.Conv2d):
        if isinstance(module.padding, str):  # 'same' / 'valid'
            pad = (_pair(module.dilation) * (_pair(module.kernel_size) - 1)) // 2 if module.padding == "same" else 0
        else:
            pad = _pair(module.padding)
        return field.step(_pair(module.kernel_size), _pair(module.stride), pad, _pair(module.dilation))
    if isinstance(module, POOLS):
        stride = module.stride if module.stride is not None else module.kernel_size
        dil = getattr(module, "dilation", 1)
        return field.step(_pair(module.kernel_size), _pair(stride), _pair(module.padding), _pair(dil))
    if isinstance(module, ADAPTIVE):
        n_in, n_out = int(x.shape[-1]), int(y.shape[-1])
        if n_in == n_out:
            return field
        if n_out == 1:  # global pooling: the whole image
            return None
        return field.step(math.ceil(n_in / n_out), n_in // n_out)
    if isinstance(module, nn.Linear | nn.Flatten):
        return None
    return field


def _macs(module: nn.Module, x: torch.Tensor, y: torch.Tensor) -> int:
    per_image_out = y[0].numel()
    if isinstance(module, nn.Conv2d):
        k = math.prod(module.kernel_size)
        return per_image_out * (module.in_channels // module.groups) * k
    if isinstance(module, nn.Linear):
        return per_image_out * module.in_features
    return 0


def course_names(arch: str, model: nn.Module) -> dict[str, str]:
    """Module path -> the course's layer name for VGG-style nets (and AlexNet), else {}.

    VGG16 / vgg_mini: ``convB_I`` (I-th conv of block B), ``reluB_I``, ``poolB``; AlexNet:
    ``conv1..conv5`` and ``pool1, pool2, pool5`` (named after the conv before them);
    the classifier's linear layers ``fc6, fc7, fc8``.
    """
    features = getattr(model, "features", None)
    classifier = getattr(model, "classifier", None)
    if not isinstance(features, nn.Sequential) or not isinstance(classifier, nn.Sequential):
        return {}
    names: dict[str, str] = {}
    block, conv_in_block, conv_total, last = 1, 0, 0, ""
    for idx, m in features.named_children():
        path = f"features.{idx}"
        if isinstance(m, nn.Conv2d):
            conv_in_block += 1
            conv_total += 1
            last = f"conv{conv_total}" if arch == "alexnet" else f"conv{block}_{conv_in_block}"
            names[path] = last
        elif isinstance(m, nn.ReLU) and last:
            names[path] = "relu" + last[4:]
        elif isinstance(m, POOLS):
            names[path] = f"pool{conv_total}" if arch == "alexnet" else f"pool{block}"
            block, conv_in_block, last = block + 1, 0, ""
    fc = 6
    for idx, m in classifier.named_children():
        if isinstance(m, nn.Linear):
            names[f"classifier.{idx}"] = f"fc{fc}"
            fc += 1
    return names


@torch.no_grad()
def inspect_model(model: nn.Module, input_size: int, names: dict[str, str] | None = None) -> Inspection:
    """Run one (1, 3, input_size, input_size) forward pass and tabulate every leaf module call."""
    names = names or {}
    tracker = _FieldTracker()
    rows: list[LayerRow] = []
    seen: set[int] = set()
    pending: dict[int, ReceptiveField | None] = {}

    def pre_hook(module: nn.Module, args: tuple) -> None:
        xs = list(_tensors(args))
        pending[id(module)] = tracker.get(xs[0]) if xs else None

    def make_hook(path: str):
        def hook(module: nn.Module, args: tuple, output: Any) -> None:
            xs, ys = list(_tensors(args)), list(_tensors(output))
            if not xs or not ys:
                return
            x, y = xs[0], ys[0]
            field = _layer_field(module, pending.pop(id(module), None), x, y)
            tracker.set(y, field)
            params = 0
            if id(module) not in seen:
                seen.add(id(module))
                params = sum(p.numel() for p in module.parameters(recurse=False))
            fc_eq = fc_equivalent_weights(tuple(x.shape[1:]), tuple(y.shape[1:])) if isinstance(module, nn.Conv2d) else None
            rows.append(
                LayerRow(
                    layer=path,
                    name=names.get(path, ""),
                    type=type(module).__name__,
                    output_shape=tuple(int(d) for d in y.shape[1:]),
                    params=int(params),
                    macs=int(_macs(module, x, y)),
                    rf=field.size if field is not None else None,
                    jump=field.jump if field is not None else None,
                    fc_equivalent_params=fc_eq,
                )
            )

        return hook

    handles = []
    for path, module in model.named_modules():
        if path and not any(True for _ in module.children()):
            handles.append(module.register_forward_pre_hook(pre_hook))
            handles.append(module.register_forward_hook(make_hook(path)))
    was_training = model.training
    model.eval()
    try:
        x = torch.zeros(1, 3, input_size, input_size)
        with tracker:
            tracker.set(x, ReceptiveField())
            model(x)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    params = sum(p.numel() for p in model.parameters())
    listed = sum(r.params for r in rows)
    if listed != params:  # parameters in modules the forward never called, or in non-leaf modules
        rows.append(LayerRow("(not called)", "", "-", (), params - listed, 0, None, None, None))
    return Inspection(
        input_size=input_size,
        rows=rows,
        params=int(params),
        params_fc=int(sum(p.numel() for m in model.modules() if isinstance(m, nn.Linear) for p in m.parameters())),
        params_conv=int(sum(p.numel() for m in model.modules() if isinstance(m, nn.Conv2d) for p in m.parameters())),
        macs=int(sum(r.macs for r in rows)),
    )


def zero_model(arch: str) -> nn.Module:
    """Architecture ``arch`` (its default head) with all weights zero, in eval mode."""
    spec = get_arch(arch)
    with torch.device("meta"):
        model = spec.builder(spec.num_classes)
    model = model.to_empty(device="cpu")
    with torch.no_grad():
        for t in [*model.parameters(), *model.buffers()]:
            t.zero_()
    return model.eval()


def published(arch: str) -> dict[str, float]:
    """torchvision's published parameter count and GMACs (``_ops``) for ``arch``, if any."""
    source = get_arch(arch).imagenet_source
    meta = source.published if source is not None else {}
    if "num_params" not in meta:
        return {}
    return {"published_params": int(meta["num_params"]), "published_gmacs": float(meta["_ops"])}


def inspect_arch(arch: str, input_size: int | None = None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(metrics, per-layer table) of architecture ``arch`` at ``input_size`` (None: its own)."""
    spec = get_arch(arch)
    size = spec.input_size if input_size is None else input_size
    model = zero_model(arch)
    try:
        result = inspect_model(model, size, course_names(arch, model))
    except RuntimeError as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(
            f"inspect: {arch} cannot run on a {size} px input ({first[:120]}); "
            f"set inspect.input_size to null or to at least {spec.input_size}"
        ) from None
    metrics: dict[str, Any] = {"arch": arch, **result.totals()}
    spatial = [r.rf for r in result.rows if r.rf is not None]
    metrics["receptive_field"] = max(spatial) if spatial else None
    if size == spec.input_size:
        metrics.update(published(arch))
    return metrics, result.table()


