"""Stage 4: the artifact, a plan's kernels compiled for one target, dtype and device.

Every kernel is its own translation unit and its own cache entry, keyed by the kernel
itself (not the spec): specs that share a kernel (a DWT with other level counts, a
scattering network with another J, a transform and its adjoint) share its binary, and a
call compiles only the kernels it launches, all of them at once on every core. Compiles
log one line each (logger ``wavegen``) and, past a second, show progress on a terminal.
"""
from __future__ import annotations

import collections
import functools
import hashlib
import logging
import os
import sys
import threading
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from . import cache, emulation, render
from .backends import args_struct

log = logging.getLogger("wavegen")
PROGRAMS = 256       # runner programs kept per artifact (the least recently used go first)
_LOADED: dict[tuple, "Artifact"] = {}     # this process's artifacts (a Transform's and ops')
_LOADED_LOCK = threading.Lock()


def get(plan, target: str, dtype: str, device) -> "Artifact":
    """The artifact of ``plan`` for ``target`` ('cpu', 'cuda', 'cuda_emulated'), ``dtype``
    and ``device`` (a torch.device: the CUDA device, its index or the current one), one
    per process and emulation mode (wavegen.emulation)."""
    index = None
    if target == "cuda":
        import torch
        index = device.index if device.index is not None else torch.cuda.current_device()
    mode = emulation.mode() if target == "cuda_emulated" else "plain"
    key = (plan.spec.json, target, dtype, index, mode)
    found = _LOADED.get(key)
    if found is None:
        with _LOADED_LOCK:
            found = _LOADED.get(key) or Artifact(plan, target, dtype, index, mode)
            _LOADED[key] = found
    return found


class Artifact:
    """The kernels of ``plan`` for ``target`` and ``dtype`` (and, on CUDA, a device):
    ``ensure`` compiles or loads the ones a call needs, ``entry`` gives one's entry point;
    ``programs`` keeps the runner's programs (runner.py) of calls it has run."""

    def __init__(self, plan, target: str, dtype: str, device_index: int | None = None,
                 emulation_mode: str = "plain"):
        from .backends import cuda, host
        self.plan, self.target, self.dtype = plan, target, dtype
        if target == "cuda":
            self.toolchain = cuda.toolchain(device_index)
            self._compile = functools.partial(cuda.compile_cubin, device_index)
            self._load = functools.partial(cuda.load, device_index=device_index)
            self.suffix = ".cu"
        else:
            self.toolchain = host.toolchain(target, emulation_mode)
            self._compile = functools.partial(host.compile_library, target, emulation_mode)
            self._load = functools.partial(host.load, target=target,
                                           emulation_mode=emulation_mode)
            self.suffix = ".cpp"
        self.functions = {}
        self.programs = Programs()
        self._lock = threading.Lock()

    def ensure(self, kernels) -> None:
        """Compile (in parallel) or load from the cache every kernel not loaded yet (by
        name: hashing a kernel hashes its taps, and every call comes here)."""
        missing = {k.name: k for k in kernels if k.name not in self.functions}
        if not missing:
            return
        with self._lock:
            missing = [k for k in missing.values() if k.name not in self.functions]
            if not missing:
                return
            with _Progress(f"{len(missing)} kernel(s) of {self.plan.library_name} for "
                           f"{self.target} {self.dtype}"):
                with ThreadPoolExecutor(max_workers=min(len(missing), os.cpu_count() or 1)) \
                        as pool:
                    paths = list(pool.map(self._fetch, missing))
            for kernel, path in zip(missing, paths):
                self.functions[kernel.name] = self._load(path, kernel, self.dtype)

    def ensure_all(self) -> None:
        """Every kernel of the plan's library (both directions): ahead-of-time builds."""
        self.ensure(self.plan.library_kernels.values())

    def _fetch(self, kernel):
        templates = self.plan.kernel_templates
        material = dict(kernel=kernel.compiled, kernel_templates=templates,
                        target=self.target, dtype=self.dtype,
                        templates=render.templates_digest(templates, self.target),
                        code=cache.code_digest(), toolchain=self.toolchain)
        # Named after the kernel alone (the key is the kernel too): another spec finds it.
        name = f"{kernel.name}_{self.target}_{self.dtype}"
        override = _override(name + self.suffix)
        if override is not None:      # its own entry: never mixed with the generated one
            material["override"] = hashlib.sha256(override.encode()).hexdigest()
        start = time.perf_counter()
        path, compiled = cache.fetch(
            name, material, lambda: override if override is not None else
            render.render_kernel(templates, kernel, self.target, self.dtype),
            self.suffix, self._compile, first_use=self.plan.library_name)
        if compiled:
            log.info("compiled %s (%s) for %s %s in %.1f s; cached in %s", kernel.name,
                     self.plan.library_name, self.target, self.dtype,
                     time.perf_counter() - start, path.parent)
        return path

    def entry(self, kernel) -> tuple:
        """(the kernel's loaded entry point ``fn(packed, blocks, threads)``, its argument
        struct), compiling or loading it if no call has yet."""
        function = self.functions.get(kernel.name)
        if function is None:
            self.ensure([kernel])
            function = self.functions[kernel.name]
        return function, args_struct(kernel.params)


class Programs:
    """The runner's programs (runner.Program) of the calls an artifact ran, by what
    determines them; past PROGRAMS the least recently used go."""

    def __init__(self):
        self._programs = collections.OrderedDict()
        self._lock = threading.Lock()

    def get(self, key, build):
        with self._lock:
            program = self._programs.get(key)
            if program is not None:
                self._programs.move_to_end(key)
                return program
        program = build()
        with self._lock:
            self._programs[key] = program
            if len(self._programs) > PROGRAMS:
                self._programs.popitem(last=False)
        return program


def _override(file_name: str) -> str | None:
    """The hand-edited source for a kernel's translation unit, where WAVEGEN_KERNEL_OVERRIDE
    names a directory holding ``file_name`` (``<kernel>_<target>_<dtype>.cpp`` or ``.cu``,
    the name of its cache entry less the key): compiled instead of the rendered source, with
    a warning."""
    directory = os.environ.get("WAVEGEN_KERNEL_OVERRIDE")
    path = Path(directory) / file_name if directory else None
    if path is None or not path.is_file():
        return None
    warnings.warn(f"wavegen: compiling {path} instead of the generated source "
                  "(WAVEGEN_KERNEL_OVERRIDE)", stacklevel=2)
    return path.read_text()


def current_material(material: dict) -> dict | None:
    """What an entry like ``material`` (its target and kernel family) built now would
    record besides its kernel: the code and templates digests and the toolchain (None for
    CUDA without a GPU, which cannot tell its toolchain)."""
    from .backends import cuda, host
    target = material.get("target")
    if target == "cuda":
        import torch
        if not torch.cuda.is_available():
            return None
        toolchain = cuda.toolchain(0)
    else:     # an emulated entry is current in the mode its flags record
        recorded = material.get("toolchain", {}).get("flags")
        mode = next((m for m in emulation.MODES if host.flags(target, m) == recorded), "plain")
        toolchain = host.toolchain(target, mode)
    return dict(code=cache.code_digest(),
                templates=render.templates_digest(material.get("kernel_templates", "dwt"),
                                                  target),
                toolchain=toolchain)


class _Progress:
    """After a second of compiling, a line on a terminal's stderr that counts the seconds;
    it is cleared when the compile ends."""

    def __init__(self, what: str):
        self.what = what
        self._done = threading.Event()

    def __enter__(self):
        if sys.stderr.isatty():
            self._thread = threading.Thread(target=self._show, daemon=True)
            self._thread.start()
        return self

    def _show(self):
        start = time.perf_counter()
        shown = False
        while not self._done.wait(1.0):
            shown = True
            sys.stderr.write(f"\rwavegen: compiling {self.what}... "
                             f"{time.perf_counter() - start:.0f} s")
            sys.stderr.flush()
        if shown:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()

    def __exit__(self, *exc):
        self._done.set()
        if hasattr(self, "_thread"):
            self._thread.join()
        return False
