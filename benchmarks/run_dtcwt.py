"""Benchmark wavegen's 2-D DTCWT against pytorch_wavelets and the dtcwt package.

Per filter configuration: forward, forward+backward, inverse and inverse+backward times
(median over interleaved rounds, fresh random inputs), each peer's ratio to wavegen, and
wavegen's time over the memory-traffic floor. The dtcwt package is NumPy, one plane at a
time, without gradients. Writes JSON and markdown to benchmarks/results/. Usage:

    python benchmarks/run_dtcwt.py [--device cpu|cuda] [--rounds 7] [--shape N,C,H,W] [--quick]
"""
from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as common  # noqa: E402  (timing, machine description, allocator settings)

if __name__ == "__main__":
    common.keep_freed_memory()

import dtcwt  # noqa: E402
import numpy as np  # noqa: E402
import pytorch_wavelets as ptw  # noqa: E402
import torch  # noqa: E402

import wavegen  # noqa: E402

CONFIGS = [("near_sym_a", "qshift_a", 2), ("near_sym_b", "qshift_b", 3)]
PASSES = ("fwd", "fwd+bwd", "inv", "inv+bwd")


def flat(outputs):
    yl, yh = outputs
    return [yl, *yh] if isinstance(outputs, tuple) else [outputs]


def libraries(biort, qshift, J, device):
    """name -> (forward(x) -> (yl, yh), inverse((yl, yh)) -> x)."""
    ours_f = wavegen.nn.DTCWTForward(biort, qshift, J=J)
    ours_i = wavegen.nn.DTCWTInverse(biort, qshift)
    ref_f = ptw.DTCWTForward(biort=biort, qshift=qshift, J=J).to(device)
    ref_i = ptw.DTCWTInverse(biort=biort, qshift=qshift).to(device)
    libs = {"wavegen": (ours_f, ours_i), "pytorch_wavelets": (ref_f, ref_i)}
    if device == "cpu":
        t = dtcwt.Transform2d(biort=biort, qshift=qshift)

        def forward(x):
            return [t.forward(plane, nlevels=J) for plane in x.reshape(-1, *x.shape[2:]).numpy()]

        def inverse(pyramids):
            return [t.inverse(p) for p in pyramids]
        libs["dtcwt"] = (forward, inverse)
    return libs


def timings(fwd, inv, x, differentiable: bool):
    """Seconds for each pass; the output gradients are drawn before timing."""
    out = {}
    coeffs = fwd(x)
    out["fwd"] = common.timed(lambda: fwd(x), x.device.type)
    out["inv"] = common.timed(lambda: inv(coeffs), x.device.type)
    if differentiable:
        xg = x.detach().requires_grad_()
        grads = [torch.randn_like(t) for t in flat(coeffs)]
        out["fwd+bwd"] = common.timed(
            lambda: torch.autograd.backward(flat(fwd(xg)), grads), x.device.type)
        leaves = [t.detach().requires_grad_() for t in flat(coeffs)]
        g = torch.randn_like(inv(coeffs))
        out["inv+bwd"] = common.timed(
            lambda: torch.autograd.backward(inv((leaves[0], leaves[1:])), g), x.device.type)
    return out


def main():
    args, device, shape = common.options("three rounds")
    rounds = 3 if args.quick else args.rounds
    bandwidth = common.copy_bandwidth(device)
    rows = []
    for biort, qshift, J in CONFIGS:
        libs = libraries(biort, qshift, J, device)
        samples = {}
        for r in range(rounds + 1):                     # round 0 warms up (compiles)
            for name, (fwd, inv) in libs.items():       # interleaved
                x = torch.randn(shape, device=device)
                for kind, seconds in timings(fwd, inv, x, name != "dtcwt").items():
                    if r:
                        samples.setdefault((name, kind), []).append(seconds)
        yl, yh = libs["wavegen"][0](torch.randn(shape, device=device))
        coeff_bytes = sum(t.numel() for t in [yl, *yh]) * 4
        signal_bytes = int(np.prod(shape)) * 4
        floor = {"fwd": coeff_bytes + signal_bytes, "inv": coeff_bytes + signal_bytes}
        floor["fwd+bwd"] = floor["inv+bwd"] = 2 * (coeff_bytes + signal_bytes)
        med = {k: statistics.median(v) for k, v in samples.items()}
        for kind in PASSES:
            ours = med[("wavegen", kind)]
            row = {"biort": biort, "qshift": qshift, "levels": J, "pass": kind,
                   "wavegen_ms": ours * 1e3, "over_floor": ours / (floor[kind] / bandwidth)}
            for name in libs:
                if name != "wavegen" and (name, kind) in med:
                    row[f"{name}_ms"] = med[(name, kind)] * 1e3
                    row[f"{name}_ratio"] = med[(name, kind)] / ours
            rows.append(row)
            print(json.dumps(row), flush=True)
    result = {"benchmark": "dtcwt2d", "device": device, "shape": shape, "dtype": "float32",
              "rounds": rounds, "statistic": "median", "copy_bandwidth_GBps": bandwidth / 1e9,
              "machine": common.machine(device), "rows": rows}
    write(result, args)


def write(result: dict, args):
    m = result["machine"]
    peers = ["pytorch_wavelets", "dtcwt"]
    lines = [f"# wavegen dtcwt2d benchmark: {result['device']}", "",
             f"Machine: {m.get('gpu') or m['cpu']} ({m['threads']} torch threads), torch "
             f"{m['torch']}. Input {tuple(result['shape'])} float32; median of "
             f"{result['rounds']} interleaved rounds. Copy bandwidth "
             f"{result['copy_bandwidth_GBps']:.1f} GB/s. dtcwt is NumPy, plane by plane, "
             "without gradients.", "",
             "| filters | J | pass | wavegen ms | x floor | "
             + " | ".join(f"{p} ms (ratio)" for p in peers) + " |",
             "|---|---|---|---|---|" + "---|" * len(peers)]
    for r in result["rows"]:
        cells = [f"{r[p + '_ms']:.1f} ({r[p + '_ratio']:.1f}x)" if p + "_ms" in r else "-"
                 for p in peers]
        lines.append(f"| {r['biort']}/{r['qshift']} | {r['levels']} | {r['pass']} | "
                     f"{r['wavegen_ms']:.2f} | {r['over_floor']:.1f} | " + " | ".join(cells) + " |")
    common.save(result, lines, args)


if __name__ == "__main__":
    main()
