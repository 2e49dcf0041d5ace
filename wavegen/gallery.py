"""The checked-in gallery of generated sources (generated/): rendered kernels of a few
canonical specs, so that a change to the planner or templates shows up as a diff of real
kernels. ``python -m wavegen gallery`` rewrites it; a test fails when it is stale."""
from __future__ import annotations

from pathlib import Path

from .plan import plan
from .render import render
from .spec import Spec

CANONICAL = [
    (Spec("dwt2d", "db4", 3, "symmetric"), ("cuda", "cpu")),
    (Spec("dwt2d", "db4", 3, "symmetric").adjoint(), ("cuda", "cpu")),
    (Spec("idwt2d", "db4", 3, "symmetric"), ("cuda",)),
    (Spec("dwt1d", "sym3", 2, "antireflect"), ("cuda",)),
    (Spec("dtcwt2d", biort="near_sym_a", qshift="qshift_a", levels=2), ("cuda", "cpu")),
    (Spec("idtcwt2d", biort="near_sym_a", qshift="qshift_a", levels=2), ("cuda", "cpu")),
    (Spec("scatter2d", biort="near_sym_a", qshift="qshift_a", levels=2, order=2), ("cuda",)),
]
SUFFIX = {"cuda": ".cu", "cpu": ".cpp"}


def sources() -> dict[str, str]:
    """File name -> rendered text, for every canonical spec and target (float32)."""
    return {f"{spec.readable_name()}{SUFFIX[target]}": render(plan(spec), target, "float32")
            for spec, targets in CANONICAL for target in targets}


def write(directory: Path) -> list[str]:
    directory.mkdir(parents=True, exist_ok=True)
    for old in directory.glob("*"):
        if old.suffix in SUFFIX.values():
            old.unlink()
    for name, text in sources().items():
        (directory / name).write_text(text)
    return sorted(sources())


def stale(directory: Path) -> list[str]:
    """Names of gallery files that are missing, different or no longer generated."""
    expected = sources()
    present = {p.name for p in directory.glob("*") if p.suffix in SUFFIX.values()}
    changed = [n for n, text in expected.items()
               if n not in present or (directory / n).read_text() != text]
    return sorted(changed + sorted(present - set(expected)))
