"""The checked-in gallery of generated sources (generated/): rendered kernels of a few
canonical specs, so that a change to the planner or templates shows up as a diff of real
kernels, and their CUDA kernels' resources on sm_80 and sm_90 (resources.md, from the
NVRTC it names). ``python -m wavegen gallery`` rewrites both; a test fails when the
sources are stale (and, with -m slow and the same NVRTC, when resources.md is)."""
from __future__ import annotations

from pathlib import Path

from .plan import from_json, tap_offset
from .plan_taps import PassSpec
from .render import render
from .spec import Spec

_SCATTER = Spec("scatter2d", biort="near_sym_a", qshift="qshift_a", levels=2, order=2)
# (spec, targets, dtype): float32, and 2-byte storage where it changes the code most.
CANONICAL = [
    (Spec("dwt2d", "db4", 3, "symmetric"), ("cuda", "cpu"), "float32"),
    (Spec("dwt2d", "db4", 3, "symmetric").adjoint(), ("cuda", "cpu"), "float32"),
    (Spec("idwt2d", "db4", 3, "symmetric"), ("cuda",), "float32"),
    (Spec("dwt1d", "sym3", 2, "antireflect"), ("cuda",), "float32"),
    (Spec("dtcwt2d", biort="near_sym_a", qshift="qshift_a", levels=2), ("cuda", "cpu"),
     "float32"),
    (Spec("idtcwt2d", biort="near_sym_a", qshift="qshift_a", levels=2), ("cuda", "cpu"),
     "float32"),
    (_SCATTER, ("cuda", "cpu"), "float32"),
    (_SCATTER, ("cuda",), "bfloat16"),
    (Spec("dwt2d", "db4", 3, "symmetric"), ("cpu",), "float16"),
    # Run-time taps (learnable banks, taps.py): the db4 passes and their taps' gradient.
    (PassSpec("analysis", "symmetric", 8, tap_offset(8, "symmetric")), ("cuda", "cpu"),
     "float32"),
    (PassSpec("tapgrad", "symmetric", 8, tap_offset(8, "symmetric")), ("cuda", "cpu"),
     "float32"),
]
SUFFIX = {"cuda": ".cu", "cpu": ".cpp"}


def sources() -> dict[str, str]:
    """File name -> rendered text, for every canonical spec, target and dtype."""
    return {f"{spec.readable_name()}{'' if dtype == 'float32' else '_' + dtype}"
            f"{SUFFIX[target]}": render(from_json(spec.json), target, dtype)
            for spec, targets, dtype in CANONICAL for target in targets}


RESOURCES = "resources.md"


def resources_report() -> str:
    """resources.md: a table per canonical CUDA source (wavegen.resources)."""
    from . import resources
    from .backends import nvrtc
    major, minor = nvrtc.version()
    lines = ["# Resources of the gallery's CUDA kernels", "",
             f"ptxas's report through NVRTC {major}.{minor} (`python -m wavegen gallery`); "
             "occupancy at each kernel's block size, and what bounds it.", ""]
    for spec, targets, dtype in CANONICAL:
        if "cuda" in targets:
            lines += [f"## {spec.readable_name()}, {dtype}", "",
                      *resources.table(from_json(spec.json), dtype), ""]
    return "\n".join(lines)


def write(directory: Path) -> list[str]:
    directory.mkdir(parents=True, exist_ok=True)
    for old in directory.glob("*"):
        if old.suffix in SUFFIX.values():
            old.unlink()
    for name, text in sources().items():
        (directory / name).write_text(text)
    (directory / RESOURCES).write_text(resources_report())
    return sorted(sources()) + [RESOURCES]


def stale(directory: Path) -> list[str]:
    """Names of gallery files that are missing, different or no longer generated."""
    expected = sources()
    present = {p.name for p in directory.glob("*") if p.suffix in SUFFIX.values()}
    changed = [n for n, text in expected.items()
               if n not in present or (directory / n).read_text() != text]
    return sorted(changed + sorted(present - set(expected)))
