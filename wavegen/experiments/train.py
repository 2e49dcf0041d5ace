"""Training a hybrid ScatterNet as the thesis did, a run being a directory:

    config.json       the resolved configuration
    metrics.jsonl     one line per epoch: losses, top-1/top-5, learning rate, seconds, images/s
    checkpoint.pt     the state after the last finished epoch (every epoch's too with
                      keep_checkpoints: checkpoints/epoch_NNN.pt), written whole then renamed
    best.pt           the model of the best test top-1 so far
    result.json       written when the last epoch is done: the final and best metrics
    tensorboard/      scalars, when TensorBoard is installed

Every random number comes from generators seeded by (seed, epoch): the initial weights,
the order of the training images, the shifts and flips. So ``resume`` after a kill
repeats the interrupted epoch from the last checkpoint and ends bit for bit where an
uninterrupted run ends (on the CPU; on CUDA where PyTorch's deterministic algorithms allow).
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
import signal
import sys
import time

import torch
from torch import nn

from ..machine import describe
from . import data as datasets
from .models import HybridNet

# The schedule of the thesis per dataset: epochs and the epochs after which the rate is
# scaled by 0.2; digits (not in the thesis) at CIFAR's proportions.
SCHEDULES = {"cifar10": (120, (60, 80, 100)), "cifar100": (120, (60, 80, 100)),
             "tiny-imagenet": (45, (18, 30, 40)), "digits": (30, (15, 20, 25))}


@dataclasses.dataclass
class Config:
    dataset: str = "digits"
    data_dir: str | None = None
    front: str = "dtcwt"
    biort: str = "near_sym_a"
    qshift: str | None = "qshift_a"
    mode: str = "symmetric"
    magbias: float = 1e-2
    L: int = 6
    width: int = 192
    epochs: int | None = None             # None: the dataset's schedule
    milestones: tuple[int, ...] | None = None
    gamma: float = 0.2
    lr: float = 0.5
    momentum: float = 0.85
    weight_decay: float = 1e-4
    batch_size: int = 128
    shift: int = 4
    flip: bool = True
    seed: int = 0
    device: str | None = None             # None: cuda when available, else cpu
    steps_per_epoch: int | None = None    # a cap, for quick runs and tests
    keep_checkpoints: bool = False
    # CUDA: deterministic cuDNN and cuBLAS choices (bit-for-bit resume), at some speed; off:
    # cuDNN picks its fastest algorithms.
    deterministic: bool = True

    def resolved(self) -> "Config":
        if self.dataset not in datasets.DATASETS:
            raise ValueError(f"unknown dataset {self.dataset!r}; accepted datasets are "
                             f"{', '.join(datasets.DATASETS)}")
        epochs, milestones = SCHEDULES[self.dataset]
        epochs = self.epochs if self.epochs is not None else epochs
        if self.milestones is not None:
            milestones = tuple(self.milestones)
        elif self.epochs is not None:      # the schedule's proportions for other lengths
            milestones = tuple(sorted({max(1, round(m * epochs / SCHEDULES[self.dataset][0]))
                                       for m in milestones}))
        for name, value, low in (("epochs", epochs, 1), ("batch_size", self.batch_size, 1),
                                 ("width", self.width, 1), ("L", self.L, 1),
                                 ("shift", self.shift, 0)):
            if value < low:
                raise ValueError(f"{name} must be at least {low}; got {value}")
        if self.lr <= 0 or self.magbias < 0 or not 0 <= self.momentum < 1:
            raise ValueError(f"lr must be > 0, magbias >= 0 and momentum in [0, 1); got "
                             f"lr={self.lr}, magbias={self.magbias}, momentum={self.momentum}")
        device = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
        return dataclasses.replace(self, epochs=epochs, milestones=milestones, device=device)

    def to_json(self) -> dict:
        return {k: list(v) if isinstance(v, tuple) else v
                for k, v in dataclasses.asdict(self).items()}


def _generator(seed: int, epoch: int, stream: int) -> torch.Generator:
    return torch.Generator().manual_seed((seed * 1_000_003 + epoch) * 8 + stream)


def _save(obj, path: str) -> None:
    """torch.save whole or not at all: a kill leaves the previous file."""
    tmp = f"{path}.{os.getpid()}.tmp"
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _write_json(obj, path: str) -> None:
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=1, sort_keys=True)
    os.replace(tmp, path)


class Progress:
    """A progress bar per epoch on stderr (redrawn on a terminal, one line per epoch
    otherwise)."""

    def __init__(self, what: str, total: int, stream=sys.stderr):
        self.what, self.total, self.stream = what, total, stream
        self.live, self.last = stream.isatty(), 0.0

    def update(self, done: int, text: str) -> None:
        now = time.monotonic()
        if not self.live or (now - self.last < 0.2 and done < self.total):
            return
        self.last = now
        filled = int(30 * done / self.total)
        self.stream.write(f"\r{self.what} [{'=' * filled}{' ' * (30 - filled)}] "
                          f"{done}/{self.total} {text}")
        self.stream.flush()

    def close(self, text: str) -> None:
        self.stream.write(("\r" if self.live else "") + f"{self.what} {text}\n")
        self.stream.flush()


def _accuracy(logits: torch.Tensor, labels: torch.Tensor) -> tuple[int, int]:
    """Correct at top 1 and top 5 (of the batch)."""
    top = logits.topk(min(5, logits.shape[1]), dim=1).indices
    hits = top == labels.view(-1, 1)
    return int(hits[:, 0].sum()), int(hits.any(1).sum())


class _Dist:
    """This process's place under torchrun (rank, world); one process otherwise."""

    def __init__(self, device: str):
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.local = int(os.environ.get("LOCAL_RANK", "0"))
        self.device = torch.device(device)
        if self.world > 1:
            backend = "nccl" if self.device.type == "cuda" else "gloo"
            if self.device.type == "cuda":
                self.device = torch.device("cuda", self.local)
                torch.cuda.set_device(self.device)
            if not torch.distributed.is_initialized():
                torch.distributed.init_process_group(backend)

    def sum(self, values: list[float]) -> list[float]:
        if self.world == 1:
            return values
        t = torch.tensor(values, dtype=torch.float64, device=self.device)
        torch.distributed.all_reduce(t)
        return t.tolist()


def _kill_point() -> tuple[int, int] | None:
    """WAVEGEN_EXPERIMENTS_KILL_AT=epoch:step: the process SIGKILLs itself there (tests
    kill a run at a known point with no chance to clean up)."""
    at = os.environ.get("WAVEGEN_EXPERIMENTS_KILL_AT")
    return tuple(int(v) for v in at.split(":")) if at else None


def train(config: Config, out: str, resume: bool = False, log=print) -> dict:
    """Train (or, with ``resume``, continue) the run in the directory ``out``; returns the
    result (final and best metrics)."""
    config = config.resolved()
    if config.device.startswith("cuda"):
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")   # before cuBLAS starts
        torch.backends.cudnn.deterministic = config.deterministic
        torch.backends.cudnn.benchmark = not config.deterministic
        torch.use_deterministic_algorithms(config.deterministic, warn_only=True)
    dist = _Dist(config.device)
    lead = dist.rank == 0
    checkpoint_path = os.path.join(out, "checkpoint.pt")
    if os.path.exists(checkpoint_path) and not resume:
        raise FileExistsError(f"{out} holds a run already; pass --resume to continue it, or "
                              "another --out")
    if resume and os.path.exists(os.path.join(out, "config.json")):
        with open(os.path.join(out, "config.json")) as f:
            saved = json.load(f)
        wanted = config.to_json()
        differ = {k: (saved.get(k), v) for k, v in wanted.items()
                  if k not in ("device", "data_dir") and saved.get(k) != v}
        if differ:
            raise ValueError(f"--resume of {out} with other options than it was started with "
                             f"(saved, given): {differ}")
    if resume and os.path.exists(os.path.join(out, "result.json")):       # finished
        with open(os.path.join(out, "result.json")) as f:
            return json.load(f)
    os.makedirs(out, exist_ok=True)
    if lead:
        _write_json(config.to_json(), os.path.join(out, "config.json"))

    dataset = datasets.load(config.dataset, config.data_dir)
    train_images = dataset.train.images.float() / 255
    mean = train_images.mean((0, 2, 3)).tolist()
    std = train_images.std((0, 2, 3)).clamp_min(1e-3).tolist()
    del train_images
    torch.manual_seed(config.seed)
    model = HybridNet(dataset.shape, dataset.classes, config.front, config.width,
                      config.biort, config.qshift, config.mode, config.magbias, config.L,
                      mean, std, config.shift, config.flip).to(dist.device)
    if dist.world > 1:
        if dist.device.type == "cuda":      # batch statistics over all ranks (CUDA only)
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        net = nn.parallel.DistributedDataParallel(
            model, device_ids=[dist.device.index] if dist.device.type == "cuda" else None)
    else:
        net = model
    optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum,
                                weight_decay=config.weight_decay)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, list(config.milestones),
                                                     config.gamma)
    start, best = 1, {"test_top1": -1.0}
    if resume and os.path.exists(checkpoint_path):
        state = torch.load(checkpoint_path, map_location=dist.device, weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        start, best = state["epoch"] + 1, state["best"]
        log(f"resuming {out} after epoch {state['epoch']}")
    metrics_path = os.path.join(out, "metrics.jsonl")
    row = None
    if lead:        # lines of epochs after the checkpoint belong to the killed attempt
        lines = open(metrics_path).read().splitlines() if os.path.exists(metrics_path) else []
        kept = [line for line in lines if json.loads(line)["epoch"] < start]
        with open(metrics_path, "w") as f:
            f.write("".join(line + "\n" for line in kept))
        row = json.loads(kept[-1]) if kept else None     # the last finished epoch's
    board = _tensorboard(out) if lead else None
    pin = dist.device.type == "cuda"
    kill = _kill_point()
    loss_fn = nn.CrossEntropyLoss()
    n_train = len(dataset.train.labels)
    steps = math.ceil(n_train / config.batch_size)
    if config.steps_per_epoch is not None:
        steps = min(steps, config.steps_per_epoch)
    for epoch in range(start, config.epochs + 1):
        began = time.perf_counter()
        net.train()
        order = torch.randperm(n_train, generator=_generator(config.seed, epoch, 0))
        augment = _generator(config.seed, epoch, 1)
        progress = Progress(f"epoch {epoch}/{config.epochs}", steps) if lead else None
        totals = [0.0, 0.0, 0.0, 0.0]             # loss sum, top-1, top-5, images
        for step in range(steps):
            if kill == (epoch, step):
                os.kill(os.getpid(), signal.SIGKILL)
            batch = order[step * config.batch_size:(step + 1) * config.batch_size]
            # Every rank draws the whole batch's augmentation (the same generator) and
            # takes its rows: the draws do not depend on the number of ranks.
            draws = model.augment.draw(len(batch), augment)[dist.rank::dist.world]
            mine = batch[dist.rank::dist.world]
            images = dataset.train.images[mine]
            labels = dataset.train.labels[mine]
            if pin:
                images, labels = images.pin_memory(), labels.pin_memory()
            images = images.to(dist.device, non_blocking=True)
            labels = labels.to(dist.device, non_blocking=True)
            logits = net(images, draws)
            loss = loss_fn(logits, labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            top1, top5 = _accuracy(logits.detach(), labels)
            totals = [totals[0] + float(loss.detach()) * len(mine), totals[1] + top1, totals[2] + top5,
                      totals[3] + len(mine)]
            if progress:
                progress.update(step + 1, f"loss {totals[0] / totals[3]:.3f} "
                                f"top1 {100 * totals[1] / totals[3]:.1f}%")
        lr = optimizer.param_groups[0]["lr"]
        scheduler.step()
        totals = dist.sum(totals)
        seconds = time.perf_counter() - began
        test = evaluate(net, dataset.test, config.batch_size * 4, dist)
        row = {"epoch": epoch, "lr": lr, "train_loss": totals[0] / totals[3],
               "train_top1": totals[1] / totals[3], "train_top5": totals[2] / totals[3],
               **test, "seconds": seconds, "images_per_second": totals[3] / seconds}
        improved = row["test_top1"] > best["test_top1"]     # the same on every rank
        best = row if improved else best
        if not lead:
            continue
        progress.close(f"loss {row['train_loss']:.3f} train {100 * row['train_top1']:.1f}% "
                       f"test {100 * row['test_top1']:.1f}% ({row['images_per_second']:.0f} "
                       "img/s)")
        with open(metrics_path, "a") as f:
            f.write(json.dumps(row, sort_keys=True) + "\n")
        if board is not None:
            for key, value in row.items():
                board.add_scalar(key, value, epoch)
            board.flush()
        if improved:
            _save({"model": model.state_dict(), "epoch": epoch, "config": config.to_json()},
                  os.path.join(out, "best.pt"))
        state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                 "scheduler": scheduler.state_dict(), "epoch": epoch, "best": best,
                 "config": config.to_json()}
        if config.keep_checkpoints:
            os.makedirs(os.path.join(out, "checkpoints"), exist_ok=True)
            _save(state, os.path.join(out, "checkpoints", f"epoch_{epoch:03d}.pt"))
        _save(state, checkpoint_path)
    result = {"final": row, "best": best,
              "config": config.to_json(), "machine": describe(dist.device.type)}
    if lead:
        _write_json(result, os.path.join(out, "result.json"))
    return result


@torch.no_grad()
def evaluate(net: nn.Module, split: datasets.Split, batch_size: int, dist: _Dist) -> dict:
    net.eval()
    loss_fn = nn.CrossEntropyLoss(reduction="sum")
    totals = [0.0, 0.0, 0.0, 0.0]
    n = len(split.labels)
    for start in range(dist.rank * batch_size, n, batch_size * dist.world):
        images = split.images[start:start + batch_size].to(dist.device)
        labels = split.labels[start:start + batch_size].to(dist.device)
        logits = net(images)
        top1, top5 = _accuracy(logits, labels)
        totals = [totals[0] + float(loss_fn(logits, labels)), totals[1] + top1,
                  totals[2] + top5, totals[3] + len(labels)]
    totals = dist.sum(totals)
    return {"test_loss": totals[0] / totals[3], "test_top1": totals[1] / totals[3],
            "test_top5": totals[2] / totals[3]}


def _tensorboard(out: str):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:         # TensorBoard is optional
        return None
    return SummaryWriter(os.path.join(out, "tensorboard"))
