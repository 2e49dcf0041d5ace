"""``python -m wavegen``: manage the cache, print or precompile a spec's kernels, regenerate
the gallery.

    python -m wavegen cache [list|prune|clear]
    python -m wavegen source SPEC [--target cpu|cuda|cuda_emulated] [--dtype float32]
    python -m wavegen precompile SPEC... [--dtype float32 ...] [--target cpu ...]
    python -m wavegen inspect SPEC [--dtype float32] [--shape 1,1,64,64] [--backward]
    python -m wavegen gallery [DIR]

``inspect`` prints the resources of the spec's CUDA kernels on sm_80 and sm_90 (NVRTC's
ptxas report: registers, spills, shared memory, occupancy) and the memory traffic model
of a call on an input of ``--shape`` (the checked emulation: sectors per request, bank
conflicts, bytes against the floor, a predicted H100/H200 time).

A SPEC is ``kind,key=value,...`` (``dwt2d,wavelet=db4,levels=3,mode=symmetric``), a layer
of wavegen.nn with its arguments (``ScatLayerj2,biort=near_sym_b,qshift=qshift_b``), or a
JSON object of Spec's fields (or ``Spec.to_json()``'s). Values are JSON where they parse as JSON (3, 0.01, null,
[true,false]), else strings.
"""
import argparse
import datetime
import json
import os
import sys
from pathlib import Path

import torch

from . import cache, gallery, nn
from .artifact import current_material
from .plan import plan
from .render import DTYPES, TARGETS, render
from .spec import Spec
from .transform import precompile


def parse_spec(text: str) -> Spec:
    if text.lstrip().startswith("{"):
        fields = json.loads(text)
        canonical = "banks" in fields or isinstance(fields.get("biort"), dict)
        return Spec.from_json(text) if canonical else Spec(**fields)   # Spec.to_json's too
    name, *pairs = [part for part in text.split(",") if part]
    kwargs = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"wavegen: {pair!r} in {text!r} is not key=value")
        try:
            kwargs[key] = json.loads(value)
        except ValueError:
            kwargs[key] = value
    layer = getattr(nn, name, None)
    if isinstance(layer, type) and issubclass(layer, torch.nn.Module):
        return layer(**kwargs).spec
    return Spec(name, **kwargs)


def _size(n: float) -> str:
    return f"{n / 1024:.1f} KiB" if n < 1 << 20 else f"{n / (1 << 20):.1f} MiB"


def _cache(action: str) -> None:
    root = cache.cache_root()
    if action == "clear":
        print(f"removed {cache.clear()} entries from {root}")
        return
    found = cache.entries(current_material)
    stale = [e for e in found if not e["valid"] or e["stale"]]
    if action == "prune":
        freed = cache.remove(e["path"] for e in stale)
        print(f"removed {len(stale)} stale or incomplete entries ({_size(freed)}) from {root}")
        return
    total = sum(e["bytes"] for e in found)
    print(f"{len(found)} entries, {_size(total)}, in {root} ({len(stale)} stale or incomplete: "
          "`python -m wavegen cache prune` removes them)")
    for e in found:
        used = datetime.datetime.fromtimestamp(e["used"]).strftime("%Y-%m-%d %H:%M") \
            if e["used"] else "-"
        state = "incomplete" if not e["valid"] else \
            "stale: other " + ", ".join(e["stale"]) if e["stale"] else \
            "" if e["stale"] is not None else "(toolchain not checkable here)"
        print(f"  {_size(e['bytes']):>10}  {used}  {e['target'] or '?':13} "
              f"{e['dtype'] or '?':8} {Path(e['path']).name} (first for "
              f"{e['first_use'] or '?'})  {state}".rstrip())


def _inspect(spec: Spec, dtype: str, shape: str | None, backward: bool) -> None:
    from . import resources, traffic
    from .backends import nvrtc
    p = plan(spec)
    if shape is None:
        shape = "1,1,4096" if p.ndim == 1 else "1,1,64,64"
    try:
        dims = tuple(int(n) for n in shape.split(","))
    except ValueError:
        raise SystemExit(f"wavegen: --shape {shape!r} is not comma-separated integers")
    if len(dims) != p.ndim + 2:
        raise SystemExit(f"wavegen: --shape {shape!r} needs N, C and {p.ndim} spatial sizes")
    major, minor = nvrtc.version()
    print(f"{spec.readable_name()}, {dtype}\n\nResources (NVRTC {major}.{minor}, ptxas -v):")
    print("\n".join(resources.table(p, dtype)))
    measured = traffic.measure(spec, dims, dtype, "backward" if backward else "forward")
    print(f"\nMemory traffic model, {measured.direction} on {'x'.join(map(str, dims))}:")
    print("\n".join(traffic.table(measured)))
    print("".join(f"- {line}\n" for line in traffic.misses(measured)), end="")
    print("predicted: " + ", ".join(f"{name} {measured.seconds(bw) * 1e6:.3g} us"
                                    for name, bw in traffic.BANDWIDTH.items()))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m wavegen", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("cache", help="list, prune (stale entries) or clear compiled kernels")
    c.add_argument("action", choices=("list", "prune", "clear"), nargs="?", default="list")
    s = sub.add_parser("source", help="print a spec's generated source")
    s.add_argument("spec")
    s.add_argument("--target", default="cuda", choices=TARGETS)
    s.add_argument("--dtype", default="float32", choices=tuple(DTYPES))
    p = sub.add_parser("precompile", help="build specs' kernels into the cache ahead of time")
    p.add_argument("specs", nargs="+", metavar="spec")
    p.add_argument("--dtype", nargs="+", default=["float32"], choices=tuple(DTYPES))
    p.add_argument("--target", nargs="+", default=["cpu"], choices=("cpu", "cuda",
                                                                     "cuda_emulated"))
    i = sub.add_parser("inspect", help="a spec's kernel resources and memory traffic model")
    i.add_argument("spec")
    i.add_argument("--dtype", default="float32", choices=tuple(DTYPES))
    i.add_argument("--shape", help="the input's shape, N,C,... (default 1,1,64,64 for 2-D, "
                                   "1,1,4096 for 1-D)")
    i.add_argument("--backward", action="store_true", help="model the input's gradient")
    g = sub.add_parser("gallery", help="regenerate the checked-in generated/ sources")
    g.add_argument("directory", nargs="?", default="generated")
    args = parser.parse_args(argv)
    if args.command == "cache":
        _cache(args.action)
    elif args.command == "source":
        print(render(plan(parse_spec(args.spec)), args.target, args.dtype), end="")
    elif args.command == "precompile":
        specs = [parse_spec(text) for text in args.specs]
        count = precompile(specs, dtypes=args.dtype, targets=args.target)
        print(f"{count} kernels compiled or found in {cache.cache_root()}")
    elif args.command == "inspect":
        _inspect(parse_spec(args.spec), args.dtype, args.shape, args.backward)
    else:
        for name in gallery.write(Path(args.directory)):
            print(f"wrote {Path(args.directory) / name}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:
        # The reader (`| head`) left: end quietly, without a second error at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(0)
