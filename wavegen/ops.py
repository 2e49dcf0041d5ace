"""The torch op behind every transform, with its fake (meta) kernel and autograd.

One op, ``wavegen::run(inputs, spec, geometry, target)``, serves every spec: the spec is
its canonical JSON and the geometry a flat list of sizes (plan.Geometry). Its backward is
the same op on ``spec.adjoint()``: gradients are generated kernels too, save no tensors
(the transforms are linear), and are themselves differentiable.
"""
from __future__ import annotations

import functools

import torch

from .spec import Spec


@functools.lru_cache(maxsize=None)
def _adjoint_json(spec_json: str) -> str:
    return Spec.from_json(spec_json).adjoint().to_json()


def _transform(spec_json: str, target: str):
    from .transform import build_from_json
    return build_from_json(spec_json, None if target in ("cpu", "cuda") else target)


def _shapes(plan, geometry: list[int], lead) -> tuple[list, list]:
    return plan.io_shapes(plan.Geometry.unflat(geometry, plan.ndim), lead)


@torch.library.custom_op("wavegen::run", mutates_args=())
def run(inputs: list[torch.Tensor], spec: str, geometry: list[int],
        target: str) -> list[torch.Tensor]:
    transform = _transform(spec, target)
    plan = transform.plan
    return transform.execute(inputs, plan.Geometry.unflat(geometry, plan.ndim), target)


@run.register_fake
def _run_fake(inputs, spec, geometry, target):
    plan = _transform(spec, target).plan
    _, outs = _shapes(plan, geometry, inputs[0].shape[:2])
    return [inputs[0].new_empty(shape) for shape in outs]


def _setup_context(ctx, inputs, output):
    _, ctx.spec, ctx.geometry, ctx.target = inputs


def _backward(ctx, grads):
    plan = _transform(ctx.spec, ctx.target).plan
    present = next(g for g in grads if g is not None)
    _, outs = _shapes(plan, ctx.geometry, present.shape[:2])
    grads = [g if g is not None else present.new_zeros(shape) for g, shape in zip(grads, outs)]
    return run(grads, _adjoint_json(ctx.spec), ctx.geometry, ctx.target), None, None, None


run.register_autograd(_backward, setup_context=_setup_context)
