"""What a user waits for before a transform first runs: the cold build (an empty cache:
every kernel the first forward, then the first backward, compiles) of ScatLayerj2 and the
DTCWT, and a warm process (a full cache: import, build, first call).

    python benchmarks/run_startup.py [--baseline DIR] [--out DIR] [--rounds N]

Each measurement is a fresh process with its own cache directory; ``--baseline DIR`` runs
another wavegen checkout (an earlier revision) in the same run, alternating.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = """
import json, sys, time
t0 = time.perf_counter()
import torch, wavegen
t1 = time.perf_counter()
case = sys.argv[1]
if case == "ScatLayerj2":
    layer = wavegen.nn.ScatLayerj2(biort="near_sym_b", qshift="qshift_b")
    run = lambda x: [layer(x)]
elif case == "DTCWT":
    layer = wavegen.nn.DTCWTForward(J=3, biort="near_sym_b", qshift="qshift_b")
    run = lambda x: (lambda o: [o[0], *o[1]])(layer(x))
else:
    layer = wavegen.nn.DWTForward(J=3, wave="db4", mode="symmetric")
    run = lambda x: (lambda o: [o[0], *o[1]])(layer(x))
x = torch.randn(2, 3, 64, 64, requires_grad=True)
t2 = time.perf_counter()
outs = run(x)
t3 = time.perf_counter()
torch.autograd.backward(outs, [torch.ones_like(o) for o in outs])
t4 = time.perf_counter()
print(json.dumps(dict(import_s=t1 - t0, build_s=t2 - t1, forward_s=t3 - t2,
                      backward_s=t4 - t3)))
"""


def measure(path: Path, case: str, cache: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(path), "WAVEGEN_CACHE_DIR": cache}
    # From another directory: the checkout's own wavegen would shadow PYTHONPATH's.
    proc = subprocess.run([sys.executable, "-c", SCRIPT, case], env=env, capture_output=True,
                          text=True, check=True, cwd=cache)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import run as common
    parser = argparse.ArgumentParser()
    parser.add_argument("--baseline", type=Path, default=None,
                        help="another wavegen checkout to measure in the same run")
    args, device, _ = common.options("one round", parser)
    rounds = 1 if args.quick else min(args.rounds, 3)
    builds = {"wavegen": ROOT} | ({"baseline": args.baseline.resolve()} if args.baseline
                                 else {})
    samples = {}
    for _ in range(rounds):
        for case in ("ScatLayerj2", "DTCWT", "DWT"):
            for name, path in builds.items():          # interleaved
                with tempfile.TemporaryDirectory() as cache:
                    cold = measure(path, case, cache)
                    warm = measure(path, case, cache)
                samples.setdefault((name, case, "cold"), []).append(cold)
                samples.setdefault((name, case, "warm"), []).append(warm)
                print(name, case, json.dumps(cold), json.dumps(warm), flush=True)
    rows = []
    for (name, case, state), runs in samples.items():
        row = {"build": name, "case": case, "cache": state}
        for key in runs[0]:
            row[key] = statistics.median(r[key] for r in runs)
        rows.append(row)
    git = lambda p: subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=p,  # noqa
                                   capture_output=True, text=True).stdout.strip()
    result = {"benchmark": "startup", "device": "cpu", "shape": [2, 3, 64, 64],
              "dtype": "float32", "rounds": rounds, "statistic": "median",
              "machine": common.machine("cpu"), "revision": git(ROOT),
              "baseline": git(args.baseline) if args.baseline else None, "rows": rows}
    m = result["machine"]
    lines = [f"# wavegen startup: cpu", "",
             f"Machine: {m['cpu']}, {m['threads']} torch threads, torch {m['torch']}. A "
             "(2, 3, 64, 64) float32 input; seconds, median of "
             f"{rounds} fresh processes per row. Cold: an empty cache (the first forward "
             "compiles its kernels, the first backward the rest); warm: the same cache "
             f"again. Revision {result['revision']}" +
             (f", baseline {result['baseline']}." if args.baseline else "."), "",
             "| build | transform | cache | import | build | first forward | first backward |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['build']} | {r['case']} | {r['cache']} | {r['import_s']:.2f} | "
                     f"{r['build_s']:.3f} | {r['forward_s']:.2f} | {r['backward_s']:.2f} |")
    common.save(result, lines, args)


if __name__ == "__main__":
    main()
