"""Benchmark wavegen's DTCWT scattering network against pytorch_wavelets and Kymatio: the
comparison of Cotter's thesis (Tables 1.1 and 1.2).

Layers, all with 49 or more channels per input channel at 1/4 resolution:
- wavegen type A: ScatLayerj2(near_sym_b, qshift_b, symmetric)
- wavegen type B: ScatLayerj2(near_sym_a, qshift_a, zero)
- pytorch_wavelets ScatLayerj2 with both filter pairs (symmetric: its mode='zero' does not
  work at J=2)
- Kymatio Scattering2D(J=2, L=6) (49 channels, the same count) and L=8 (81 channels)

Per layer: forward and forward+backward time (median over interleaved rounds, fresh random
inputs, output gradients drawn before timing), and the memory saved for backward, measured
with saved_tensors_hooks as the distinct storages the autograd graph holds. Writes JSON and
markdown to benchmarks/results/. Usage:

    python benchmarks/run_scatter.py [--device cpu|cuda] [--rounds 7] [--shape N,C,H,W] [--quick]
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

import pytorch_wavelets as ptw  # noqa: E402
import torch  # noqa: E402
# kymatio.torch also imports the 3-D frontend, which needs scipy.special.sph_harm (gone in
# SciPy 1.17); the 2-D frontend alone imports cleanly.
from kymatio.scattering2d.frontend.torch_frontend import ScatteringTorch2D  # noqa: E402

import wavegen  # noqa: E402

TYPE_A = ("near_sym_b", "qshift_b")
TYPE_B = ("near_sym_a", "qshift_a")
# The goals of the issue: wavegen's fwd+bwd against these peers, per wavegen type.
GOALS = {"pytorch_wavelets ScatLayerj2": 20.0, "Kymatio L=6": 10.0}


def layers(shape, device):
    """label -> (module, description); every module maps (N, C, H, W) to one tensor."""
    H, W = shape[-2:]
    return {
        "wavegen A": (wavegen.nn.ScatLayerj2(*TYPE_A, mode="symmetric"),
                      "near_sym_b/qshift_b, symmetric"),
        "wavegen B": (wavegen.nn.ScatLayerj2(*TYPE_B, mode="zero"),
                      "near_sym_a/qshift_a, zero"),
        "pytorch_wavelets A": (ptw.ScatLayerj2(*TYPE_A, mode="symmetric").to(device),
                               "ScatLayerj2 near_sym_b/qshift_b, symmetric"),
        "pytorch_wavelets B": (ptw.ScatLayerj2(*TYPE_B, mode="symmetric").to(device),
                               "ScatLayerj2 near_sym_a/qshift_a, symmetric"),
        "Kymatio L=6": (ScatteringTorch2D(J=2, shape=(H, W), L=6).to(device),
                        "Scattering2D(J=2, L=6)"),
        "Kymatio L=8": (ScatteringTorch2D(J=2, shape=(H, W), L=8).to(device),
                        "Scattering2D(J=2, L=8)"),
    }


def saved_bytes(layer, x) -> int:
    """Bytes of the distinct storages the autograd graph of one forward keeps for backward."""
    storages = {}

    def pack(t):
        s = t.untyped_storage()
        storages[s.data_ptr()] = s.nbytes()
        return t
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = layer(x.detach().requires_grad_())
    del out
    return sum(storages.values())


def main():
    args, device, shape = common.options("three rounds")
    rounds = 3 if args.quick else args.rounds
    libs = layers(shape, device)
    samples = {}
    for r in range(rounds + 1):                         # round 0 warms up (compiles)
        for name, (layer, _) in libs.items():           # interleaved
            x = torch.randn(shape, device=device)
            times = {"fwd": common.timed(lambda: layer(x), device),
                     "fwd+bwd": common.timed(common.forward_backward(lambda v: [layer(v)], x),
                                             device)}
            if r:
                for kind, seconds in times.items():
                    samples.setdefault((name, kind), []).append(seconds)
    x = torch.randn(shape, device=device)
    rows = []
    for name, (layer, description) in libs.items():
        out = layer(x)
        rows.append({"layer": name, "description": description,
                     "channels": out[0].numel() // out.shape[-1] // out.shape[-2] // shape[1],
                     "out_shape": list(out.shape),
                     "fwd_ms": statistics.median(samples[(name, "fwd")]) * 1e3,
                     "fwd+bwd_ms": statistics.median(samples[(name, "fwd+bwd")]) * 1e3,
                     "saved_MiB": saved_bytes(layer, x) / 2 ** 20})
        print(json.dumps(rows[-1]), flush=True)
    result = {"benchmark": "scatter2d", "device": device, "shape": shape, "dtype": "float32",
              "rounds": rounds, "statistic": "median", "machine": common.machine(device),
              "input_MiB": x.numel() * x.element_size() / 2 ** 20, "rows": rows,
              "goals": goals(rows)}
    write(result, args)


def goals(rows) -> list[dict]:
    """The issue's ratios: each peer's fwd+bwd time over wavegen's, per wavegen type, and
    wavegen's saved memory as a fraction of Kymatio L=6's."""
    by = {r["layer"]: r for r in rows}
    out = []
    for t in "AB":
        ours = by[f"wavegen {t}"]
        peers = {"pytorch_wavelets ScatLayerj2": by[f"pytorch_wavelets {t}"],
                 "Kymatio L=6": by["Kymatio L=6"], "Kymatio L=8": by["Kymatio L=8"]}
        for peer, row in peers.items():
            out.append({"wavegen": t, "peer": peer,
                        "fwd_ratio": row["fwd_ms"] / ours["fwd_ms"],
                        "fwd+bwd_ratio": row["fwd+bwd_ms"] / ours["fwd+bwd_ms"],
                        "goal_fwd+bwd_ratio": GOALS.get(peer),
                        "saved_fraction": ours["saved_MiB"] / row["saved_MiB"]})
    return out


def write(result: dict, args):
    m = result["machine"]
    lines = [f"# wavegen scatter2d benchmark: {result['device']}", "",
             f"Machine: {m.get('gpu') or m['cpu']} ({m['threads']} torch threads), torch "
             f"{m['torch']}. Input {tuple(result['shape'])} float32 "
             f"({result['input_MiB']:.0f} MiB); median of {result['rounds']} interleaved "
             "rounds. Saved: the distinct storages the autograd graph keeps for backward.", "",
             "| layer | filters / settings | channels per input channel | fwd ms | fwd+bwd ms | saved MiB |",
             "|---|---|---|---|---|---|"]
    for r in result["rows"]:
        lines.append(f"| {r['layer']} | {r['description']} | {r['channels']} | "
                     f"{r['fwd_ms']:.1f} | {r['fwd+bwd_ms']:.1f} | {r['saved_MiB']:.1f} |")
    lines += ["", "| wavegen | peer | fwd ratio | fwd+bwd ratio (goal) | wavegen saved / peer saved |",
              "|---|---|---|---|---|"]
    for g in result["goals"]:
        goal = f" (>= {g['goal_fwd+bwd_ratio']:.0f}x)" if g["goal_fwd+bwd_ratio"] else ""
        lines.append(f"| {g['wavegen']} | {g['peer']} | {g['fwd_ratio']:.1f}x | "
                     f"{g['fwd+bwd_ratio']:.1f}x{goal} | {100 * g['saved_fraction']:.2f}% |")
    common.save(result, lines, args)


if __name__ == "__main__":
    main()
