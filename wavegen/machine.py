"""The machine a measurement ran on, as benchmark and experiment result files record it."""
from __future__ import annotations

import platform

import torch


def describe(device: str) -> dict:
    """Host, CPU model, Python and torch versions, torch's threads; the GPU on cuda."""
    info = {"node": platform.node(), "machine": platform.machine(),
            "python": platform.python_version(), "torch": torch.__version__,
            "threads": torch.get_num_threads(), "cpu": platform.processor()}
    try:
        with open("/proc/cpuinfo") as f:
            info["cpu"] = next(line.split(":", 1)[1].strip() for line in f
                               if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    if device == "cuda":
        info["gpu"] = torch.cuda.get_device_name()
    return info
