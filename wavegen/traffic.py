"""The memory traffic model: what a transform's CUDA kernels move through device memory,
counted by the checked emulation (emulation.py, templates/cuda_emu.h) on the CPU.

For every global load and store a warp executes (the k-th execution of one access site by
32 consecutive threads of a block) the emulator counts the 32-byte sectors it touches and
the fewest its distinct bytes could touch; for shared memory the wavefronts (bank
conflicts) against the fewest; and the lanes taking part against the warp's. The bytes a
kernel moves are its blocks' distinct sectors, each block counted alone (no reuse across
blocks: L2 may do better, the model does not count on it); the floor is each input byte
read once and each output byte written once. A predicted time is the bytes over the
memory bandwidth, a lower bound that ignores latency and arithmetic.

Large inputs are measured on one and two planes and extrapolated linearly in the number
of planes (exact where every plane launches the same blocks, as the flat and tiled grids
do when a plane fills whole blocks).
"""
from __future__ import annotations

import dataclasses
import math

import torch

from . import emulation

SECTOR = 32
# Memory bandwidth, bytes/s: the vendors' datasheets (H100 SXM5, H200 SXM), and the
# device-to-device copy measured on an H200 here (.library/device/KINDS.md, 2026-10-28).
BANDWIDTH = {"H100 (3.35 TB/s)": 3.35e12, "H200 (4.8 TB/s)": 4.8e12,
             "H200 (4.3 TB/s copy)": 4.3e12}
GOAL = 1.5       # bytes moved within this factor of the floor (issue 17)
# A kernel's count is named as a cause where it exceeds its minimum by this factor (or,
# for lanes, falls below it): small excesses (a partial tile, a row's unaligned start)
# are in every kernel.
SLACK = 1.05


@dataclasses.dataclass
class KernelTraffic:
    kernel: str
    launches: int
    counts: dict          # the emulator's counters, summed over the launches

    def _ratio(self, a: str, b: str) -> float:
        return self.counts[a] / self.counts[b] if self.counts[b] else 0.0

    @property
    def bytes(self) -> float:
        """Moved under the model: each block's distinct sectors, loads and stores."""
        return SECTOR * (self.counts["global_load_block_sectors"] +
                         self.counts["global_store_block_sectors"])

    @property
    def floor(self) -> float:
        """The kernel's own floor: the distinct sectors of the whole launch."""
        return SECTOR * (self.counts["global_load_launch_sectors"] +
                         self.counts["global_store_launch_sectors"])

    def sectors_per_request(self, direction: str) -> tuple[float, float]:
        """(sectors, fewest possible) per global request of 'load' or 'store'."""
        return (self._ratio(f"global_{direction}_sectors", f"global_{direction}_requests"),
                self._ratio(f"global_{direction}_min_sectors", f"global_{direction}_requests"))

    def wavefronts_per_request(self, direction: str) -> tuple[float, float]:
        """(wavefronts, fewest possible) per shared request; (0, 0) without shared memory."""
        return (self._ratio(f"shared_{direction}_wavefronts", f"shared_{direction}_requests"),
                self._ratio(f"shared_{direction}_min_wavefronts",
                            f"shared_{direction}_requests"))

    @property
    def lanes(self) -> float:
        """Lanes taking part per memory request, as a fraction of the warp's lanes: below
        1 where lanes of a warp take different branches (or idle on a test)."""
        keys = [f"{s}_{d}" for s in ("global", "shared") for d in ("load", "store")]
        lanes = sum(self.counts[f"{k}_lanes"] for k in keys)
        warp_lanes = sum(self.counts[f"{k}_warp_lanes"] for k in keys)
        return lanes / warp_lanes if warp_lanes else 0.0


@dataclasses.dataclass
class TransformTraffic:
    name: str
    shape: tuple
    dtype: str
    direction: str
    kernels: list[KernelTraffic]
    floor: float          # bytes: the call's inputs read once, its outputs written once

    @property
    def bytes(self) -> float:
        return sum(k.bytes for k in self.kernels)

    @property
    def ratio(self) -> float:
        return self.bytes / self.floor

    def seconds(self, bandwidth: float) -> float:
        return self.bytes / bandwidth


def _flat(result) -> list[torch.Tensor]:
    if isinstance(result, torch.Tensor):
        return [result]
    return [t for item in result for t in _flat(item)]


def _run(transform, shape, dtype: torch.dtype, direction: str):
    """The launches of one call (forward, or the backward of a forward), and the bytes of
    its inputs and outputs."""
    x = torch.randn(shape).to(dtype).requires_grad_(direction == "backward")
    with emulation.using("checked"):
        if direction == "forward":
            with emulation.record() as launches:
                outputs = _flat(transform(x))
            moved = [x, *outputs]
        else:
            outputs = _flat(transform(x))
            grads = [torch.randn_like(o) for o in outputs]
            with emulation.record() as launches:
                (gx,) = torch.autograd.grad(outputs, [x], grads)
            moved = [*grads, gx]
    return launches, sum(t.numel() * t.element_size() for t in moved)


def _by_kernel(launches: list[dict]) -> dict[str, KernelTraffic]:
    kernels: dict[str, KernelTraffic] = {}
    for launch in launches:
        counts = {k: v for k, v in launch.items() if k not in ("kernel", "threads")}
        found = kernels.get(launch["kernel"])
        if found is None:
            kernels[launch["kernel"]] = KernelTraffic(launch["kernel"], 1, counts)
        else:
            found.launches += 1
            found.counts = {k: found.counts[k] + v for k, v in counts.items()}
    return kernels


def measure(spec, shape, dtype: str = "float32", direction: str = "forward"
            ) -> TransformTraffic:
    """The traffic of a call of ``spec`` on an input of ``shape`` (N, C, ...) in
    ``dtype``, forward or backward (the input's gradient), from runs on one and two planes
    extrapolated to N * C."""
    from .transform import build
    if direction not in ("forward", "backward"):
        raise ValueError(f"direction {direction!r}: accepted 'forward', 'backward'")
    transform = build(spec, target="cuda_emulated")
    planes, spatial = math.prod(shape[:2]), tuple(shape[2:])
    torch_dtype = getattr(torch, dtype)
    one, bytes_one = _run(transform, (1, 1, *spatial), torch_dtype, direction)
    two, bytes_two = _run(transform, (1, 2, *spatial), torch_dtype, direction)
    one, two = _by_kernel(one), _by_kernel(two)
    kernels = []
    for name, a in one.items():
        b = two[name]
        counts = {k: a.counts[k] + (planes - 1) * (b.counts[k] - a.counts[k]) for k in a.counts}
        kernels.append(KernelTraffic(name, a.launches, counts))
    floor = bytes_one + (planes - 1) * (bytes_two - bytes_one)
    name = spec.readable_name() if hasattr(spec, "readable_name") else str(spec)
    return TransformTraffic(name, tuple(shape), dtype, direction, kernels, floor)


def table(traffic: TransformTraffic) -> list[str]:
    """Markdown rows, one per kernel and a total, of a measurement."""
    rows = ["| kernel | launches | MB moved | kernel floor MB | load sectors/request (min) "
            "| store sectors/request (min) | shared load wavefronts/request (min) "
            "| shared store wavefronts/request (min) | lanes |",
            "|---|---|---|---|---|---|---|---|---|"]

    def pair(values):
        return f"{values[0]:.2f} ({values[1]:.2f})" if values[0] else "-"
    for k in traffic.kernels:
        rows.append(f"| {k.kernel} | {k.launches} | {k.bytes / 1e6:.3g} | {k.floor / 1e6:.3g} "
                    f"| {pair(k.sectors_per_request('load'))} "
                    f"| {pair(k.sectors_per_request('store'))} "
                    f"| {pair(k.wavefronts_per_request('load'))} "
                    f"| {pair(k.wavefronts_per_request('store'))} | {k.lanes:.2f} |")
    rows.append(f"| total | {sum(k.launches for k in traffic.kernels)} | "
                f"{traffic.bytes / 1e6:.3g} | floor {traffic.floor / 1e6:.3g} "
                f"(x{traffic.ratio:.2f}) | | | | | |")
    return rows


def misses(traffic: TransformTraffic, goal: float = GOAL) -> list[str]:
    """Why a measurement is over ``goal`` x its floor, empty where it is not: the ratio
    split into the kernels' own floors over the call's (bytes one launch writes and
    another reads, or inputs several launches read) and each kernel's bytes over its own
    floor (sectors its blocks read again: tiles' halos), with the counts of each kernel
    that exceed their minimum (sectors per request: unaligned or strided access;
    wavefronts: bank conflicts; lanes: idle lanes)."""
    if traffic.ratio <= goal:
        return []
    floors = sum(k.floor for k in traffic.kernels)
    found = [f"x{traffic.ratio:.2f} of the floor, over {goal}: the kernels' own floors sum "
             f"to {floors / 1e6:.3g} MB, x{floors / traffic.floor:.2f} of the call's "
             f"(data one launch writes and another reads, or that several launches read); "
             f"the kernels move x{traffic.bytes / floors:.2f} of their own floors"]
    for k in traffic.kernels:
        causes = []
        if k.bytes > SLACK * k.floor:
            causes.append(f"x{k.bytes / k.floor:.2f} of its own floor "
                          f"({(k.bytes - k.floor) / 1e6:.3g} MB in sectors several blocks "
                          "touch: tiles' halos)")
        for direction in ("load", "store"):
            have, least = k.sectors_per_request(direction)
            if have > SLACK * least:
                causes.append(f"{have:.2f} sectors per global {direction} against "
                              f"{least:.2f} (unaligned or strided)")
            have, least = k.wavefronts_per_request(direction)
            if have > SLACK * least:
                causes.append(f"{have:.2f} wavefronts per shared {direction} against "
                              f"{least:.2f} (bank conflicts)")
        if k.lanes < 1 / SLACK:
            causes.append(f"{k.lanes:.2f} of a warp's lanes per request (idle lanes)")
        if causes:
            found.append(f"{k.kernel}: " + "; ".join(causes))
    return found
