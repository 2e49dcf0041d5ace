"""What a generated CUDA kernel costs the SM: registers per thread, spills, stack, static
shared memory (ptxas's verbose report, through NVRTC: no GPU needed) and the occupancy
they allow at the kernel's block size on sm_80 (A100) and sm_90 (H100, H200).

A kernel that spills, or keeps fewer than program.MIN_OCCUPANCY of an SM's warps resident,
fails the test suite unless its plan gives the reason (Kernel.resources_note).
"""
from __future__ import annotations

import dataclasses
import re

from . import render
from .backends import nvrtc
from .program import MIN_OCCUPANCY

# Per-SM limits (CUDA C Programming Guide, "Compute capabilities"; the occupancy
# calculator's allocation granularities). Shared memory: the most one SM gives its blocks,
# of which each block also holds 1 KiB reserved by the system.
LIMITS = {
    "sm_80": dict(warps=64, blocks=32, registers=65536, register_unit=256, warp_unit=4,
                  max_registers=255, shared=164 * 1024, shared_unit=128, reserved=1024),
    "sm_90": dict(warps=64, blocks=32, registers=65536, register_unit=256, warp_unit=4,
                  max_registers=255, shared=228 * 1024, shared_unit=128, reserved=1024),
}
ARCHS = tuple(LIMITS)

_ENTRY = re.compile(r"Compiling entry function '(\w+)' for '(sm_\d+)'")
_FRAME = re.compile(r"(\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads")
_USED = re.compile(r"Used (\d+) registers")
# ptxas puts "N bytes cumulative stack size" between the barriers and smem when there is a
# stack, so smem is looked up on its own.
_SMEM = re.compile(r"(\d+) bytes smem")


@dataclasses.dataclass(frozen=True)
class Resources:
    registers: int
    spill_stores: int
    spill_loads: int
    stack: int
    shared: int          # static shared memory, bytes

    @property
    def spills(self) -> int:
        return self.spill_stores + self.spill_loads


def parse(log: str) -> dict[str, Resources]:
    """ptxas's verbose report (-v) -> Resources by entry function."""
    found, name, frame = {}, None, (0, 0, 0)
    for line in log.splitlines():
        if m := _ENTRY.search(line):
            name, frame = m.group(1), (0, 0, 0)
        elif (m := _FRAME.search(line)) and name:
            frame = tuple(int(g) for g in m.groups())
        elif (m := _USED.search(line)) and name:
            smem = _SMEM.search(line)
            found[name] = Resources(int(m.group(1)), frame[1], frame[2], frame[0],
                                    int(smem.group(1)) if smem else 0)
    return found


def of_source(source: str, arch: str) -> dict[str, Resources]:
    """The resources of every entry function of a CUDA source, compiled for ``arch``."""
    _, log = nvrtc.compile_cubin_with_log(source, arch, ("--ptxas-options=-v",))
    return parse(log)


@dataclasses.dataclass(frozen=True)
class Occupancy:
    blocks: int          # resident blocks per SM
    warps: int           # resident warps per SM
    fraction: float      # of the SM's warps
    limit: str           # what bounds it: warps, blocks, registers or shared memory


def occupancy(resources: Resources, threads: int, arch: str) -> Occupancy:
    """Blocks of ``threads`` threads resident on one SM of ``arch`` (the occupancy
    calculator's arithmetic)."""
    lim = LIMITS[arch]
    warps = -(-threads // 32)
    per_warp = -(-resources.registers * 32 // lim["register_unit"]) * lim["register_unit"]
    # Registers are handed out per warp, in units of warp_unit warps per SM.
    warps_by_registers = lim["registers"] // per_warp // lim["warp_unit"] * lim["warp_unit"] \
        if resources.registers else lim["warps"]
    shared = -(-(resources.shared + lim["reserved"]) // lim["shared_unit"]) * lim["shared_unit"]
    bounds = {"warps": lim["warps"] // warps, "blocks": lim["blocks"],
              "registers": warps_by_registers // warps,
              "shared memory": lim["shared"] // shared}
    limit = min(bounds, key=bounds.get)
    blocks = bounds[limit]
    return Occupancy(blocks, blocks * warps, blocks * warps / lim["warps"], limit)


def problems(kernel, resources: Resources, arch: str) -> list[str]:
    """Why ``kernel``'s resources on ``arch`` fall short (spills, too few resident warps,
    no block fitting), empty when they do not or its plan says why."""
    found = []
    if resources.spills:
        found.append(f"spills {resources.spill_stores} bytes (stores) and "
                     f"{resources.spill_loads} (loads)")
    occ = occupancy(resources, kernel.threads_per_block, arch)
    if occ.fraction < MIN_OCCUPANCY:
        found.append(f"keeps {occ.warps} of {LIMITS[arch]['warps']} warps resident "
                     f"({occ.fraction:.0%}, bound by {occ.limit}) at "
                     f"{kernel.threads_per_block} threads per block")
    if occ.blocks == 0 or found and kernel.resources_note is None:
        return [f"{kernel.name} on {arch}: {p}" for p in found or ["no block fits an SM"]]
    return []


def table(plan, dtype: str) -> list[str]:
    """Markdown rows: every CUDA kernel of ``plan`` in ``dtype``, its block size and, per
    architecture, registers, spill bytes, static shared memory and occupancy (what
    bounds it), with the plan's note where it has one."""
    rows = ["| kernel | threads | " + " | ".join(
                f"{a} registers | {a} spills (B) | {a} shared (B) | {a} occupancy"
                for a in ARCHS) + " | note |",
            "|---|---|" + "---|---|---|---|" * len(ARCHS) + "---|"]
    for kernel in plan.library_kernels.values():
        source = render.render_kernel(plan.kernel_templates, kernel, "cuda", dtype)
        cells = []
        for arch in ARCHS:
            (found,) = of_source(source, arch).values()
            occ = occupancy(found, kernel.threads_per_block, arch)
            cells += [str(found.registers), str(found.spills), str(found.shared),
                      f"{occ.fraction:.0%} ({occ.limit})"]
        rows.append(f"| {kernel.name} | {kernel.threads_per_block} | " + " | ".join(cells) +
                    f" | {kernel.resources_note or ''} |")
    return rows
