"""The grid of the thesis's Table 1.4: DTCWT wavelet x padding x magnitude bias x dataset x
seed, plus the Morlet6 and Morlet8 baselines, one run directory per cell:
``<out>/<dataset>/<cell>/seed<k>``. Finished runs are skipped and unfinished ones resumed.

Ways to run it: one cell after another (the default); ``jobs`` cells at once, as separate
processes, each given one GPU in turn when there are GPUs; ``shard=(i, n)``: this process
takes every n-th cell from the i-th (separate machines or schedulers); under ``torchrun``
the cells run one after another, each on every rank (DistributedDataParallel).
"""
from __future__ import annotations

import dataclasses
import itertools
import os
import subprocess
import sys
import time

import torch

from .train import Config, train

WAVELETS = {"a": ("near_sym_a", "qshift_a"), "b": ("near_sym_b", "qshift_b"),
            "b_bp": ("near_sym_b_bp", "qshift_b_bp")}
PADDINGS = ("symmetric", "zero")
BIASES = (0.0, 1e-3, 1e-2, 1e-1)
MORLETS = (6, 8)


@dataclasses.dataclass(frozen=True)
class Cell:
    dataset: str
    seed: int
    front: str                      # "dtcwt" | "morlet"
    wavelet: str = "a"
    padding: str = "symmetric"
    magbias: float = 1e-2
    L: int = 6

    @property
    def name(self) -> str:
        if self.front == "morlet":
            return f"morlet{self.L}"
        return f"dtcwt-{self.wavelet}-{self.padding}-bias{self.magbias:g}"

    def path(self, out: str) -> str:
        return os.path.join(out, self.dataset, self.name, f"seed{self.seed}")

    def config(self, base: Config) -> Config:
        if self.front == "morlet":
            return dataclasses.replace(base, dataset=self.dataset, seed=self.seed,
                                       front="morlet", L=self.L)
        biort, qshift = WAVELETS[self.wavelet]
        return dataclasses.replace(base, dataset=self.dataset, seed=self.seed, front="dtcwt",
                                   biort=biort, qshift=qshift, mode=self.padding,
                                   magbias=self.magbias)


def cells(datasets, seeds: int, wavelets=tuple(WAVELETS), paddings=PADDINGS, biases=BIASES,
          morlets=MORLETS) -> list[Cell]:
    for w in wavelets:
        if w not in WAVELETS:
            raise ValueError(f"unknown wavelet {w!r}; accepted are {', '.join(WAVELETS)}")
    for p in paddings:
        if p not in PADDINGS:
            raise ValueError(f"unknown padding {p!r}; accepted are {', '.join(PADDINGS)}")
    if seeds < 1:
        raise ValueError(f"seeds must be at least 1; got {seeds}")
    grid = []
    for dataset, seed in itertools.product(datasets, range(seeds)):
        grid += [Cell(dataset, seed, "morlet", L=L) for L in morlets]
        grid += [Cell(dataset, seed, "dtcwt", w, p, float(b))
                 for w, p, b in itertools.product(wavelets, paddings, biases)]
    return grid


def finished(cell: Cell, out: str) -> bool:
    return os.path.exists(os.path.join(cell.path(out), "result.json"))


def run(grid: list[Cell], base: Config, out: str, jobs: int = 1,
        shard: tuple[int, int] = (0, 1), log=print) -> None:
    index, count = shard
    if not 0 <= index < count:
        raise ValueError(f"shard must be I/N with 0 <= I < N; got {index}/{count}")
    mine = [c for i, c in enumerate(grid) if i % count == index]
    todo = [c for c in mine if not finished(c, out)]
    log(f"grid: {len(mine)} cells here, {len(mine) - len(todo)} finished, {len(todo)} to run")
    if jobs <= 1 or int(os.environ.get("WORLD_SIZE", "1")) > 1:
        for cell in todo:
            log(f"-- {cell.path(out)}")
            train(cell.config(base), cell.path(out), resume=True, log=log)
        return
    gpus = torch.cuda.device_count()
    running: list[subprocess.Popen] = []
    failed = []
    for k, cell in enumerate(todo):
        while len(running) >= jobs:
            failed += _reap(running)
        env = dict(os.environ)
        if gpus:
            env["CUDA_VISIBLE_DEVICES"] = str(k % gpus)
        log(f"-- {cell.path(out)}")
        running.append(subprocess.Popen(_command(cell.config(base), cell.path(out)), env=env))
    while running:
        failed += _reap(running)
    if failed:
        raise RuntimeError(f"{len(failed)} grid runs failed: {failed}")


def _reap(running: list) -> list:
    """Wait until one of the running processes ends; the commands of those that failed."""
    while True:
        done = [p for p in running if p.poll() is not None]
        if done:
            for p in done:
                running.remove(p)
            return [" ".join(p.args) for p in done if p.returncode]
        time.sleep(0.5)


def _command(config: Config, out: str) -> list[str]:
    """The ``train`` command line of ``config``."""
    argv = [sys.executable, "-m", "wavegen.experiments", "train", "--resume", "--out", out]
    for field in dataclasses.fields(Config):
        value = getattr(config, field.name)
        flag = "--" + field.name.replace("_", "-")
        if field.name == "qshift" and value is None:
            argv += [flag, "none"]
            continue
        if value is None or field.name in ("flip", "deterministic"):
            continue
        if isinstance(value, bool):
            argv += [flag] if value else []
        elif isinstance(value, tuple):
            argv += [flag, *map(str, value)]
        else:
            argv += [flag, str(value)]
    argv += ["--no-flip"] if not config.flip else []
    argv += ["--fast"] if not config.deterministic else []
    return argv
