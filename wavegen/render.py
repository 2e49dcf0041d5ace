"""Stage 3: render a plan into source text for a target with the Jinja templates.

Templates place constants and unroll loops; every decision is already in the plan.
"""
from __future__ import annotations

import functools
import hashlib
import importlib.resources
import json
import re

import jinja2

from .plan import FusedLevelKernel, Plan

TARGETS = ("cpu", "cuda", "cuda_emulated")
# dtype -> (storage type, accumulator type, the type the CPU's column passes read rows as,
# symbol suffix). 2-byte storage sums in float; float16 rows are converted to float once
# per use (by the CPU's conversion instructions, 8 at a time), bfloat16 is read as it is (its
# conversion is a shift).
DTYPES = {"float32": ("float", "float", "float", "f32"),
          "float64": ("double", "double", "double", "f64"),
          "float16": ("wg_half", "float", "float", "f16"),
          "bfloat16": ("wg_bf16", "float", "wg_bf16", "bf16")}


def templates_dir():
    return importlib.resources.files("wavegen.templates")


@functools.lru_cache(maxsize=None)
def _environment() -> jinja2.Environment:
    root = templates_dir()

    def load(name):
        path = root / name
        return path.read_text() if path.is_file() else None

    return jinja2.Environment(loader=jinja2.FunctionLoader(load), undefined=jinja2.StrictUndefined,
                              keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True)


_INCLUDES = re.compile(r'{%-?\s*(?:include|import|from)\s+"([^"]+)"')


def entry_templates(templates: str, target: str) -> list[str]:
    """The templates that render a family's kernels ('dwt' or 'dtcwt') for a target."""
    prefix = "dtcwt_" if templates == "dtcwt" else ""
    if target == "cuda_emulated":
        return [prefix + "cuda.cu.j2", "cuda_emulated.cpp.j2"]
    return [prefix + ("cpu.cpp.j2" if target == "cpu" else "cuda.cu.j2")]


@functools.lru_cache(maxsize=None)
def templates_digest(templates: str, target: str) -> str:
    """Digest of the template files a family's kernels for ``target`` are rendered from
    (the entry templates and what they include or import): editing one template changes
    only the sources, cache keys and gallery files that use it."""
    names, queue = set(), entry_templates(templates, target)
    while queue:
        name = queue.pop()
        if name not in names:
            names.add(name)
            queue += _INCLUDES.findall((templates_dir() / name).read_text())
    h = hashlib.sha256()
    for name in sorted(names):
        h.update(name.encode())
        h.update((templates_dir() / name).read_bytes())
    return h.hexdigest()


def _literal(value: float) -> str:
    """A C literal that round-trips the float64 tap exactly."""
    return repr(float(value))


def _kernel_view(kernel) -> dict:
    """A pass kernel's plan data plus its taps as (index, lo, hi) rows of C expressions:
    literals, zero taps dropped (a zero tap is a load and two flops the compiler may not
    remove), or with run-time taps reads of the `taps` parameter. ``passes``: the 1-D passes
    whose arithmetic it runs (a fused 2-D level: its height and width passes)."""
    if isinstance(kernel, FusedLevelKernel):
        h, w = _kernel_view(kernel.h), _kernel_view(kernel.w)
        return dict(name=kernel.name, params=kernel.params, kind=type(kernel).__name__, h=h,
                    w=w, passes=[h, w], direction=kernel.direction,
                    cuda_tile=kernel.cuda_tile, span=kernel.span, pairs=kernel.pairs,
                    edge_rows=kernel.edge_rows, threads=kernel.threads_per_block,
                    shared_shape=kernel.shared_shape, cpu_chunk=kernel.cpu_chunk)
    view = kernel.compiled
    view.update(name=kernel.name, params=kernel.params, kind=type(kernel).__name__,
                length=kernel.length, ext_terms=kernel.ext_terms,
                parallel_min_outputs=kernel.parallel_min_outputs)
    view["passes"] = [view]
    if view["kind"] == "PassKernel":
        L = kernel.length
        rows = [(i, f"taps[{i}]", f"taps[{L + i}]") for i in range(L)] if \
            kernel.runtime_taps else \
            [(i, _literal(lo) if lo != 0 else None, _literal(hi) if hi != 0 else None)
             for i, (lo, hi) in enumerate(zip(kernel.lo, kernel.hi)) if lo != 0 or hi != 0]
        # The adjoint's taps by pair j: taps 2j and 2j+1 (lo, hi), None where zero.
        by_index = {i: (lo, hi) for i, lo, hi in rows}
        pairs = [(j, *by_index.get(2 * j, (None, None)), *by_index.get(2 * j + 1, (None, None)))
                 for j in range((L + 1) // 2)]
        view.update(fold_reach=kernel.fold_reach, tap_rows=rows, cuda_tile=kernel.cuda_tile,
                    tap_pairs=[p for p in pairs if any(t is not None for t in p[1:])])
    return view


def _level_view(kernel) -> dict:
    """A DTCWT level kernel with its taps unrolled into rows and columns: for role f and
    phase p, tap i reads extended row ``A*r + row`` and, along columns, component
    ``comp`` of the deinterleaved window at ``c + shift`` (see plan_dtcwt)."""
    e0, span = kernel.window
    A, C = kernel.decimation, kernel.stride

    def phases(role):
        pf = kernel.filter(role)
        return [[dict(i=i, tap=_literal(t), row=b + C * i, comp=(b + C * i - e0) % A,
                      shift=(b + C * i - e0) // A)
                 for i, t in enumerate(taps) if t != 0] for taps, b in zip(pf.taps, pf.base)]

    products = kernel.products
    row_roles = list(dict.fromkeys(p[0] for p in products))
    col_roles = list(dict.fromkeys(p[1] for p in products))
    view = dict(name=kernel.name, params=kernel.params, direction=kernel.direction, A=A, C=C,
                e0=e0, span=span,
                lowpass=kernel.lowpass, bands=kernel.bands,
                index=f"wg_index_{kernel.edge}", products=products, row_roles=row_roles,
                lines=[(f, p) for f in row_roles for p in (0, 1)],
                taps={r: phases(r) for r in dict.fromkeys(row_roles + col_roles)},
                tile_rows=kernel.tile_rows, tile_cols=kernel.tile_cols,
                tile_width=kernel.tile_width,
                shared_shape=kernel.shared_shape, threads=kernel.ADJOINT_THREADS,
                parallel_min_outputs=kernel.parallel_min_outputs)
    view["line_index"] = {f"{f}{p}": i for i, (f, p) in enumerate(view["lines"])}
    # The adjoint's column pass in gather form: component a of line (f, pr) sums, over the
    # products (f, g) and column phases pc, tap * y[s - shift] for every tap of g in a.
    view["gathers"] = {f"{f}{pr}": [[dict(ybuf=4 * i + 2 * pr + pc, tap=t["tap"],
                                          shift=t["shift"])
                                     for i, (f2, g, _) in enumerate(products) if f2 == f
                                     for pc in (0, 1) for t in view["taps"][g][pc]
                                     if t["comp"] == a] for a in range(A)]
                       for f, pr in view["lines"]}
    # The CUDA adjoint's tap tables per role, both phases merged (a role's two lines are
    # adjacent in `lines`: line_index[f0] + phase) and grouped by the residue of their row
    # mod A: a thread at extended index e runs only the taps with row = e mod A, entries
    # starts[e mod A] to starts[e mod A + 1] (the others never meet a sample).
    if kernel.direction == "adjoint":
        view["residue_taps"] = {}
        for role, per_phase in view["taps"].items():
            merged = sorted((dict(t, phase=ph) for ph, taps in enumerate(per_phase)
                             for t in taps), key=lambda t: t["row"] % A)
            starts = [sum(t["row"] % A < a for t in merged) for a in range(A + 1)]
            view["residue_taps"][role] = dict(taps=merged, starts=starts)
    view["max_row_taps"] = max(len(view["taps"][f][ph]) for f, ph in view["lines"])
    view["max_terms"] = max(len(t) for g in view["gathers"].values() for t in g) \
        if kernel.direction == "adjoint" else \
        max(len(t) for r in view["taps"].values() for t in r)
    return view


def plan_json(plan: Plan) -> str:
    """The plan's identity as a library: the kernels in name order, so that a spec and its
    adjoint, whose plans list the same kernels differently, share one compiled library."""
    return json.dumps({"spec": json.loads(plan.library_json),
                       "kernels": [plan.library_kernels[name].compiled
                                   for name in sorted(plan.library_kernels)]},
                      sort_keys=True)


def source_key(identity: str, templates: str, target: str, dtype: str) -> str:
    """Identity of a rendered source: what it renders (a plan's or a kernel's JSON), the
    target, the dtype and the templates it is rendered from."""
    return hashlib.sha256(json.dumps([identity, target, dtype,
                                      templates_digest(templates, target)])
                          .encode()).hexdigest()


def render(plan: Plan, target: str, dtype: str = "float32") -> str:
    """The source of the plan's whole library (every kernel, both directions), for reading
    and the gallery; a build compiles each kernel apart (render_kernel)."""
    return _render(plan.kernel_templates, list(plan.library_kernels.values()), target, dtype,
                   plan.spec.readable_name(), plan_json(plan))


def render_kernel(templates: str, kernel, target: str, dtype: str) -> str:
    """The translation unit of one kernel: a function of the kernel alone, so that every
    spec that uses the kernel shares its binary."""
    identity = json.dumps(kernel.compiled, sort_keys=True)
    return _render(templates, [kernel], target, dtype, f"{templates} kernel", identity)


def _render(templates: str, kernels, target: str, dtype: str, title: str,
            key_text: str) -> str:
    """The source of ``kernels``; its header names ``title`` (what it is), the kernels, the
    target and types, and the source key of ``key_text`` (the JSON it renders, which the
    cache keeps in the entry's meta.json)."""
    if target not in TARGETS:
        raise ValueError(f"unknown target {target!r}; accepted targets are {', '.join(TARGETS)}")
    if dtype not in DTYPES:
        raise ValueError(f"unsupported dtype {dtype!r}; accepted: {', '.join(DTYPES)}")
    storage, acc, read, suffix = DTYPES[dtype]
    view = _level_view if templates == "dtcwt" else _kernel_view
    context = dict(kernels=[view(k) for k in kernels], storage=storage, acc=acc, read=read,
                   suffix=suffix, title=title, dtype=dtype, target=target,
                   source_key=source_key(key_text, templates, target, dtype))
    env = _environment()
    entry = entry_templates(templates, target)
    if target == "cuda_emulated":     # the CUDA source, inside the emulation's host shell
        context["cuda_source"] = env.get_template(entry[0]).render(
            **{**context, "target": "cuda"})
    return env.get_template(entry[-1]).render(**context)


def kernel_symbol(kernel, dtype: str, target: str) -> str:
    """The exported name of ``kernel``'s entry point in a binary of ``target``: the host
    targets' take the packed argument struct."""
    name = f"{kernel.name}_{DTYPES[dtype][3]}"
    return {"cuda": name, "cpu": name + "_packed", "cuda_emulated": "launch_" + name}[target]
