"""Training throughput of the experiments' hybrid ScatterNets (wavegen.experiments) per
front end, on random uint8 images in CIFAR's shape (no dataset needed): images per second
of a whole SGD step (augmentation, front end, CNN, backward, update) and of the front
end's forward alone, median of interleaved rounds. Usage:

    python benchmarks/run_experiments.py [--device cpu|cuda] [--rounds 7] [--shape N,C,H,W]
        [--width 192]

(default shape 128,3,32,32, a training batch of the thesis).
"""
from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as common  # noqa: E402  (timing, machine description, result files)

from wavegen.experiments.models import HybridNet  # noqa: E402

FRONTS = {"DTCWT a (near_sym_a/qshift_a)": dict(front="dtcwt", biort="near_sym_a",
                                                 qshift="qshift_a"),
          "DTCWT b (near_sym_b/qshift_b)": dict(front="dtcwt", biort="near_sym_b",
                                                 qshift="qshift_b"),
          "Morlet6 (Kymatio)": dict(front="morlet", L=6),
          "Morlet8 (Kymatio)": dict(front="morlet", L=8)}
STEPS = 3          # SGD steps per sample


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--width", type=int, default=192)
    args, device, shape = common.options("three rounds", parser)
    if args.shape is None:
        shape = (128, 3, 32, 32)
    rounds = 3 if args.quick else args.rounds
    generator = torch.Generator().manual_seed(0)
    nets = {}
    for name, options in FRONTS.items():
        torch.manual_seed(0)
        net = HybridNet(shape[1:], 10, width=args.width, **options).to(device)
        nets[name] = (net, torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.85))
    samples = {(name, kind): [] for name in nets for kind in ("step", "front")}
    for r in range(rounds + 1):                 # round 0 warms up (compiles)
        for name, (net, optimizer) in nets.items():       # interleaved
            images = torch.randint(0, 256, shape, dtype=torch.uint8, generator=generator
                                   ).to(device)
            labels = torch.randint(0, 10, shape[:1], generator=generator).to(device)

            def step():
                for _ in range(STEPS):
                    draws = net.augment.draw(shape[0], generator)
                    loss = torch.nn.functional.cross_entropy(net(images, draws), labels)
                    optimizer.zero_grad()
                    loss.backward()
                    optimizer.step()

            def front():
                with torch.no_grad():
                    for _ in range(STEPS):
                        net.front((images.float() / 255 - net.mean) / net.std)
            net.train()
            s = common.timed(step, device)
            f = common.timed(front, device)
            if r:
                samples[(name, "step")].append(s / STEPS)
                samples[(name, "front")].append(f / STEPS)
    rows = []
    for name in nets:
        step, front = (statistics.median(samples[(name, k)]) for k in ("step", "front"))
        rows.append({"front": name, "step_ms": step * 1e3, "images_per_second": shape[0] / step,
                     "front_ms": front * 1e3,
                     "front_images_per_second": shape[0] / front})
        print(rows[-1], flush=True)
    result = {"benchmark": "experiments", "device": device, "shape": shape, "width": args.width,
              "rounds": rounds, "steps_per_sample": STEPS, "statistic": "median",
              "machine": common.machine(device), "rows": rows}
    m = result["machine"]
    lines = [f"# Hybrid ScatterNet training throughput: {device}", "",
             f"Machine: {m.get('gpu') or m['cpu']} ({m['threads']} torch threads), torch "
             f"{m['torch']}. Random uint8 images {tuple(shape)}, network width C={args.width}; "
             f"median of {rounds} interleaved rounds of {STEPS} SGD steps (augmentation, "
             "front end, CNN, backward, update); the front end's forward alone beside it.", "",
             "| front end | SGD step ms | images/s | front end fwd ms | front end images/s |",
             "|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['front']} | {r['step_ms']:.1f} | {r['images_per_second']:.0f} | "
                     f"{r['front_ms']:.2f} | {r['front_images_per_second']:.0f} |")
    common.save(result, lines, args)


if __name__ == "__main__":
    main()
