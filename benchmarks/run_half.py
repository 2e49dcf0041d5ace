"""wavegen in 2-byte storage against float32, and its accuracy against float64.

For the DWT, the DTCWT and ScatLayerj2: forward and forward+backward time in float32,
float16 and bfloat16 (median of interleaved rounds, fresh random inputs), the ratio of
each 2-byte time to float32's, and the measured error of each dtype against the float64
run of the same transform on the same (rounded) values: the largest |error| over the
largest |value|, forward, gradient and round trip. Usage:

    python benchmarks/run_half.py [--device cpu|cuda] [--rounds 7] [--shape N,C,H,W]
"""
from __future__ import annotations

import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as common  # noqa: E402  (timing, machine description, result files)

import wavegen  # noqa: E402
from wavegen.nn import ScatLayerj2  # noqa: E402

# Calls per sample, on one input: a single call of a few milliseconds is mostly noise here
# (first touches of fresh memory, the other process on the core).
REPEATS = 5
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def cases():
    """(name, levels, forward: x -> list of outputs, inverse or None)."""
    for levels in (1, 3):
        dwt = wavegen.build(wavegen.Spec("dwt2d", "db4", levels, "symmetric"))
        yield (f"dwt2d db4 J={levels}", lambda x, t=dwt: (lambda y: [y[0], *y[1]])(t(x)),
               lambda ys, t=dwt: t.inverse()(ys[0], ys[1:]))
    for levels in (1, 3):
        dtcwt = wavegen.build(wavegen.Spec("dtcwt2d", levels=levels, biort="near_sym_b",
                                           qshift="qshift_b"))
        yield (f"dtcwt2d near_sym_b/qshift_b J={levels}",
               lambda x, t=dtcwt: (lambda y: [y[0], *y[1]])(t(x)),
               lambda ys, t=dtcwt: t.inverse()(ys[0], ys[1:]))
    layer = ScatLayerj2()
    yield "ScatLayerj2", lambda x: [layer(x)], None


def relative(got: list, exact: list) -> float:
    return max(float((g.double() - e).abs().max()) for g, e in zip(got, exact)) / \
        max(float(e.abs().max()) for e in exact)


def errors(forward, inverse, x32: torch.Tensor, dtype) -> dict:
    x = x32.to(dtype).requires_grad_()
    x64 = x.detach().double().requires_grad_()
    ys, ys64 = forward(x), forward(x64)
    grads = [torch.randn_like(y64) for y64 in ys64]
    gx, = torch.autograd.grad(ys, x, [g.to(dtype) for g in grads])
    gx64, = torch.autograd.grad(ys64, x64, [g.to(dtype).double() for g in grads])
    row = {"forward": relative([y.detach() for y in ys], [y.detach() for y in ys64]),
           "gradient": relative([gx], [gx64])}
    if inverse is not None:
        xr = inverse([y.detach() for y in ys])[..., :x.shape[-2], :x.shape[-1]]
        row["round_trip"] = relative([xr], [x64.detach()])
    return row


def main():
    args, device, shape = common.options("three rounds")
    if args.shape is None:
        shape = (16, 3, 128, 128) if device == "cpu" else (128, 3, 256, 256)
    rounds = 3 if args.quick else args.rounds
    rows = []
    for name, forward, inverse in cases():
        samples = {(d, kind): [] for d in DTYPES for kind in ("fwd", "fwd+bwd")}
        for r in range(rounds + 1):                      # round 0 compiles
            for dname, dtype in DTYPES.items():          # interleaved
                x = torch.randn(shape, device=device, dtype=dtype)
                step = common.forward_backward(forward, x)
                f = common.timed(lambda: [forward(x) for _ in range(REPEATS)], device)
                b = common.timed(lambda: [step() for _ in range(REPEATS)], device)
                if r:
                    samples[(dname, "fwd")].append(f / REPEATS)
                    samples[(dname, "fwd+bwd")].append(b / REPEATS)
        x32 = torch.randn(2, 3, 64, 64, device=device)
        for dname, dtype in DTYPES.items():
            row = {"transform": name, "dtype": dname,
                   **{f"{kind}_ms": statistics.median(samples[(dname, kind)]) * 1e3
                      for kind in ("fwd", "fwd+bwd")},
                   **errors(forward, inverse, x32, dtype)}
            for kind in ("fwd", "fwd+bwd"):
                row[f"{kind}_vs_float32"] = row[f"{kind}_ms"] / \
                    (statistics.median(samples[("float32", kind)]) * 1e3)
            rows.append(row)
            print(row, flush=True)
    result = {"benchmark": "half", "device": device, "shape": shape, "rounds": rounds,
              "statistic": "median", "calls_per_sample": REPEATS, "machine": common.machine(device), "rows": rows}
    m = result["machine"]
    lines = [f"# wavegen in 2-byte storage: {device}", "",
             f"Machine: {m.get('gpu') or m['cpu']} ({m['threads']} torch threads), torch "
             f"{m['torch']}. Times: input {tuple(shape)}, median of {rounds} interleaved "
             f"rounds of {REPEATS} calls each; x float32 = time / float32's. Errors: a (2, 3, 64, 64) input, the "
             "largest |error| over the largest |value| against float64 on the same rounded "
             "values (forward: every output; gradient: of x for random output gradients; "
             "round trip: the inverse of the forward's coefficients against x).", "",
             "| transform | dtype | fwd ms | x float32 | fwd+bwd ms | x float32 | forward "
             "error | gradient error | round-trip error |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        trip = f"{r['round_trip']:.1e}" if "round_trip" in r else "-"
        lines.append(f"| {r['transform']} | {r['dtype']} | {r['fwd_ms']:.2f} | "
                     f"{r['fwd_vs_float32']:.2f} | {r['fwd+bwd_ms']:.2f} | "
                     f"{r['fwd+bwd_vs_float32']:.2f} | {r['forward']:.1e} | "
                     f"{r['gradient']:.1e} | {trip} |")
    common.save(result, lines, args)


if __name__ == "__main__":
    main()
