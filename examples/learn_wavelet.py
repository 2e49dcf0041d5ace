"""Learn a wavelet: a filter bank that sparsifies a family of signals, kept a wavelet.

The analysis and synthesis layers share one learnable bank (``wavegen.nn.FilterBankModule``,
initialised from db4). The loss is the L1 norm of the detail coefficients (sparsity) plus
the bank's distance from an orthonormal wavelet with perfect reconstruction
(``wavegen.taps.orthogonality_error`` and ``reconstruction_error``); the L1 norm is taken
relative to the coefficients' energy, so that sparsity cannot be bought by shrinking the
filters. The signals are piecewise polynomials with a
random number of jumps, which db4 already sparsifies well: the learned bank adapts its
four vanishing moments to the signals' statistics. Prints the bank before and after.

    python examples/learn_wavelet.py [--steps 600]
"""
from __future__ import annotations

import argparse
import time

import torch

import wavegen
from wavegen.taps import orthogonality_error, reconstruction_error


def signals(count: int, length: int, generator: torch.Generator) -> torch.Tensor:
    """(count, 1, length) piecewise quadratics: up to 6 pieces with random coefficients."""
    t = torch.linspace(0, 1, length)
    out = torch.zeros(count, length)
    for i in range(count):
        cuts = torch.sort(torch.rand(int(torch.randint(1, 6, (1,), generator=generator)),
                                     generator=generator)).values
        edges = torch.cat([torch.zeros(1), cuts, torch.ones(1)])
        for a, b in zip(edges[:-1], edges[1:]):
            c = torch.randn(3, generator=generator)
            piece = (t >= a) & (t <= b)
            out[i, piece] = c[0] + c[1] * (t[piece] - a) + c[2] * (t[piece] - a) ** 2
    return out.unsqueeze(1)


def measure(forward, inverse, x) -> dict:
    with torch.no_grad():
        yl, yh = forward(x)
        details = torch.cat([h.flatten(1) for h in yh], 1)
        coefficients = torch.cat([yl.flatten(1), details], 1)
        energy = coefficients.pow(2).sum(1)
        top = coefficients.pow(2).sort(1, descending=True).values
        kept = top[:, :coefficients.shape[1] // 20].sum(1) / energy     # the largest 5%
        bank = forward.filters.bank()
        return {"detail L1 / signal L2": float((details.abs().sum(1) /
                                                x.flatten(1).norm(dim=1)).mean()),
                "energy in the largest 5%": float(kept.mean()),
                "round-trip error": float((inverse((yl, yh)) - x).abs().max()),
                "reconstruction error": float(reconstruction_error(bank)),
                "orthogonality error": float(orthogonality_error(bank))}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=600)
    args = parser.parse_args()
    generator = torch.Generator().manual_seed(0)
    train, test = signals(256, 256, generator), signals(64, 256, generator)
    forward = wavegen.nn.DWT1DForward(J=4, wave="db4", mode="periodization", learnable=True)
    inverse = wavegen.nn.DWT1DInverse(wave="db4", mode="periodization",
                                      filters=forward.filters)
    before = measure(forward, inverse, test)
    start_bank = [p.detach().clone() for p in forward.filters.parameters()]
    optimiser = torch.optim.Adam(forward.filters.parameters(), lr=5e-4)
    start = time.perf_counter()
    for step in range(args.steps):
        batch = train[torch.randint(0, len(train), (64,), generator=generator)]
        optimiser.zero_grad()
        yl, yh = forward(batch)
        # Scale-free: the details' L1 norm over the coefficients' L2 norm.
        energy = (yl.pow(2).sum() + sum(h.pow(2).sum() for h in yh)).sqrt()
        sparsity = sum(h.abs().sum() for h in yh) / energy
        bank = forward.filters.bank()
        loss = sparsity + 1e5 * (orthogonality_error(bank) + reconstruction_error(bank))
        loss.backward()
        optimiser.step()
        if step % 50 == 0 or step == args.steps - 1:
            print(f"step {step:4d}  loss {loss.item():.4f}  sparsity {sparsity.item():.4f}")
    seconds = time.perf_counter() - start
    after = measure(forward, inverse, test)
    print(f"\n{args.steps} steps in {seconds:.1f} s; on 64 held-out signals:")
    print(f"{'':28s}{'db4':>12s}{'learned':>12s}")
    for key in before:
        print(f"{key:28s}{before[key]:12.3e}{after[key]:12.3e}")
    moved = max(float((p.detach() - q).abs().max()) for p, q in
                zip(forward.filters.parameters(), start_bank))
    print(f"largest change of a tap: {moved:.3e}")
    print("learned analysis lowpass:", [round(v, 4) for v in forward.filters.dec_lo.tolist()])


if __name__ == "__main__":
    main()
