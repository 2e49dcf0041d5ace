"""Run-time taps against compiled-in taps: what a learnable filter bank costs.

First the kernel alone: one analysis pass along the rows (db4, symmetric) through its
torch op, compiled-in taps (``wavegen::run`` of a one-level 1-D DWT) against run-time taps
(``wavegen::taps_pass``). Then whole transforms, the 2-D DWT (db4, symmetric, J = 1 and 3)
and the 1-D DWT (sym8, J = 4): the forward time with the taps compiled in
(``wavegen.build``) and with the same taps as tensors (``wavegen.taps.TapsTransform``:
passes composed in Python, the 2-D bands stacked by torch, the bank checked per call);
then the forward+backward time of the run-time version with the taps' gradient as well
(the learnable case) against the compiled one's (input gradient only). Medians of
interleaved rounds and their ratios. Usage:

    python benchmarks/run_taps.py [--device cpu|cuda] [--rounds 15] [--shape N,C,H,W]
"""
from __future__ import annotations

import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as common  # noqa: E402  (timing, machine description, result files)

import wavegen  # noqa: E402
from wavegen import ops  # noqa: E402
from wavegen.taps import TapsTransform, TensorFilterBank  # noqa: E402

REPEATS = 5     # calls per sample (run_half.py: one call of a few ms is mostly noise here)


def kernel_case(shape):
    """(compiled, run-time) callables of one row pass on x of ``shape``, through the ops."""
    n, c, h, w = shape
    spec = wavegen.Spec("dwt1d", "db4", 1, "symmetric")
    baked = wavegen.build(spec)
    length = 8
    run_time = TapsTransform("dwt1d", length, 1, "symmetric")
    kernel = baked.plan.kernels["wg_analysis_w"]
    taps = torch.tensor([kernel.lo, kernel.hi], dtype=torch.float64)
    geom = baked.plan.geometry_from_signal((w,))

    def compiled(x):
        return ops.run([x.view(n, c * h, w)], spec.json, geom.flat(), "cpu")

    def runtime(x):
        return [ops.taps_pass(x, taps, run_time.analysis, [3, w, geom.approx[0]], "cpu")]
    return compiled, runtime


def cases(shape):
    n, c, h, w = shape
    for kind, wave, levels, size in (("dwt2d", "db4", 1, (n, c, h, w)),
                                     ("dwt2d", "db4", 3, (n, c, h, w)),
                                     ("dwt1d", "sym8", 4, (n, c, h * w))):
        yield f"{kind} {wave} J={levels}", kind, wave, levels, size


def main():
    args, device, shape = common.options("three rounds")
    rounds = 3 if args.quick else args.rounds
    rows = []
    compiled, runtime = kernel_case(shape)
    samples = {"baked fwd": [], "taps fwd": []}
    for r in range(rounds + 1):
        x = torch.randn(shape, device=device)
        for key, step in (("baked fwd", compiled), ("taps fwd", runtime)):
            t = common.timed(lambda: [step(x) for _ in range(REPEATS)], device) / REPEATS
            if r:
                samples[key].append(t)
    row = {"transform": "one row pass (kernel)", "shape": list(shape),
           **{f"{k} ms": statistics.median(v) * 1e3 for k, v in samples.items()}}
    row["fwd ratio"] = row["taps fwd ms"] / row["baked fwd ms"]
    rows.append(row)
    print(row, flush=True)
    for name, kind, wave, levels, size in cases(shape):
        baked = wavegen.build(wavegen.Spec(kind, wave, levels, "symmetric"))
        bank = [f.requires_grad_() for f in TensorFilterBank.from_wavelet(wave, device=device)]
        run_time = TapsTransform(kind, len(bank[0]), levels, "symmetric",
                                 bank=TensorFilterBank(*bank))

        def flat(t):
            return lambda x: (lambda y: [y[0], *y[1]])(t(x))
        samples = {k: [] for k in ("baked fwd", "taps fwd", "baked fwd+bwd",
                                   "taps fwd+bwd")}
        for r in range(rounds + 1):                          # round 0 compiles
            x = torch.randn(size, device=device)
            steps = {"baked fwd": lambda: flat(baked)(x),
                     "taps fwd": lambda: flat(run_time)(x),
                     "baked fwd+bwd": common.forward_backward(flat(baked), x),
                     "taps fwd+bwd": common.forward_backward(flat(run_time), x)}
            for key, step in steps.items():                  # interleaved
                t = common.timed(lambda: [step() for _ in range(REPEATS)], device) / REPEATS
                if r:
                    samples[key].append(t)
        row = {"transform": name, "shape": list(size),
               **{f"{k} ms": statistics.median(v) * 1e3 for k, v in samples.items()}}
        row["fwd ratio"] = row["taps fwd ms"] / row["baked fwd ms"]
        row["fwd+bwd ratio"] = row["taps fwd+bwd ms"] / row["baked fwd+bwd ms"]
        rows.append(row)
        print(row, flush=True)
    result = {"benchmark": "taps", "device": device, "shape": shape, "rounds": rounds,
              "statistic": "median", "calls_per_sample": REPEATS,
              "machine": common.machine(device), "rows": rows}
    m = result["machine"]
    lines = [f"# Run-time taps against compiled-in taps: {device}", "",
             f"Machine: {m.get('gpu') or m['cpu']} ({m['threads']} torch threads), torch "
             f"{m['torch']}. Median of {rounds} interleaved rounds of {REPEATS} calls, fresh "
             "random inputs, mode symmetric, float32. fwd+bwd: the compiled transform's "
             "input gradient; the run-time one's input and tap gradients.", "",
             "| transform | input | compiled fwd ms | run-time fwd ms | ratio | compiled "
             "fwd+bwd ms | run-time fwd+bwd ms (with tap gradients) | ratio |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        both = f"{r['baked fwd+bwd ms']:.2f} | {r['taps fwd+bwd ms']:.2f} | " \
            f"{r['fwd+bwd ratio']:.2f}" if "fwd+bwd ratio" in r else "- | - | -"
        lines.append(f"| {r['transform']} | {'x'.join(map(str, r['shape']))} | "
                     f"{r['baked fwd ms']:.2f} | {r['taps fwd ms']:.2f} | "
                     f"{r['fwd ratio']:.2f} | {both} |")
    common.save(result, lines, args)


if __name__ == "__main__":
    main()
