"""``python -m wavegen.experiments train|grid|report``: see README, "Experiments"."""
from __future__ import annotations

import argparse
import dataclasses
import sys

from . import data
from .grid import BIASES, MORLETS, PADDINGS, WAVELETS
from .models import FRONTS
from .train import Config


def _none_or(kind):
    return lambda text: None if text.lower() == "none" else kind(text)


def _config_arguments(parser: argparse.ArgumentParser) -> None:
    """Every Config field as an option (defaults from Config)."""
    defaults = Config()
    add = parser.add_argument
    add("--data-dir", default=None, help="where the dataset's archive or folder lies")
    add("--front", choices=FRONTS, default=defaults.front)
    add("--biort", default=defaults.biort)
    add("--qshift", type=_none_or(str), default=defaults.qshift,
        help="'none': stacked ScatLayers (every scale with the biorthogonal set)")
    add("--mode", default=defaults.mode, choices=("symmetric", "zero"))
    add("--magbias", type=float, default=defaults.magbias)
    add("--L", type=int, default=defaults.L, help="Morlet orientations (6 or 8)")
    add("--width", type=int, default=defaults.width, help="C, the first convolutions' width")
    add("--epochs", type=int, default=None, help="default: the dataset's schedule")
    add("--milestones", type=int, nargs="*", default=None,
        help="epochs after which the rate is scaled by --gamma")
    add("--gamma", type=float, default=defaults.gamma)
    add("--lr", type=float, default=defaults.lr)
    add("--momentum", type=float, default=defaults.momentum)
    add("--weight-decay", type=float, default=defaults.weight_decay)
    add("--batch-size", type=int, default=defaults.batch_size)
    add("--shift", type=int, default=defaults.shift, help="random shifts up to this (pixels)")
    add("--no-flip", dest="flip", action="store_false", help="no random horizontal flips")
    add("--device", default=None, help="default: cuda when available, else cpu")
    add("--steps-per-epoch", type=int, default=None, help="a cap (quick runs)")
    add("--keep-checkpoints", action="store_true", help="keep every epoch's checkpoint")
    add("--fast", dest="deterministic", action="store_false",
        help="CUDA: let cuDNN pick its fastest (nondeterministic) algorithms")


def _config(args, **overrides) -> Config:
    fields = {f.name for f in dataclasses.fields(Config)}
    values = {k: v for k, v in vars(args).items() if k in fields}
    values.update(overrides)
    if values.get("milestones") is not None:
        values["milestones"] = tuple(values["milestones"])
    return Config(**values)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m wavegen.experiments",
                                     description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser("train", help="train one network; a run is a directory")
    train.add_argument("--dataset", choices=data.DATASETS, required=True)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--out", required=True, help="the run's directory")
    train.add_argument("--resume", action="store_true", help="continue the run in --out")
    _config_arguments(train)
    grid = commands.add_parser("grid", help="the grid of Table 1.4 and the Morlet baselines")
    grid.add_argument("--datasets", nargs="+", choices=data.DATASETS, required=True)
    grid.add_argument("--seeds", type=int, default=1)
    grid.add_argument("--out", required=True)
    grid.add_argument("--wavelets", nargs="+", default=list(WAVELETS), choices=list(WAVELETS))
    grid.add_argument("--paddings", nargs="+", default=list(PADDINGS), choices=PADDINGS)
    grid.add_argument("--biases", nargs="+", type=float, default=list(BIASES))
    grid.add_argument("--morlets", nargs="*", type=int, default=list(MORLETS),
                      help="Morlet baselines' L (none: no baselines)")
    grid.add_argument("--jobs", type=int, default=1, help="cells at once (processes)")
    grid.add_argument("--shard", default="0/1", help="I/N: this process's share of the cells")
    _config_arguments(grid)
    report = commands.add_parser("report", help="Tables 1.3 and 1.4 (markdown), Figure 1.2")
    report.add_argument("root", help="a grid's --out")
    report.add_argument("--out", default=None, help="where to write (default: root)")
    args = parser.parse_args(argv)
    try:
        if args.command == "train":
            from .train import train as run
            result = run(_config(args), args.out, resume=args.resume)
            best = result["best"]
            print(f"{args.out}: best test top-1 {100 * best['test_top1']:.2f}% "
                  f"(epoch {best['epoch']})")
        elif args.command == "grid":
            from . import grid as grids
            shard = tuple(int(v) for v in args.shard.split("/"))
            cells = grids.cells(args.datasets, args.seeds, args.wavelets, args.paddings,
                                args.biases, args.morlets)
            grids.run(cells, _config(args, dataset=args.datasets[0]), args.out, args.jobs,
                      shard)
        else:
            from .report import report as write
            md, png = write(args.root, args.out)
            print(open(md).read())
            print(f"wrote {md} and {png}")
    except (data.DatasetError, ValueError, FileExistsError, ImportError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
