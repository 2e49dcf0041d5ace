"""The emulated CUDA target's modes, chosen by ``WAVEGEN_EMULATION``:

- unset or ``plain``: the generated CUDA source run on the CPU (templates/cuda_emu.h);
- ``checked``: the same source with every global and shared-memory access checked and
  counted (bounds, uninitialised shared reads, shared-memory races; sectors, bank
  conflicts, lanes per request): a finding raises EmulationError naming the kernel, block
  and thread, and ``record()`` collects each launch's counters (wavegen.traffic);
- ``sanitized``: checked, and built with AddressSanitizer and UndefinedBehaviorSanitizer,
  which abort the process on a finding. Their runtime must be loaded first, with the C++
  runtime (ASan intercepts its exceptions, which PyTorch throws and catches): run Python
  under ``LD_PRELOAD="$(c++ -print-file-name=libasan.so) $(c++ -print-file-name=libstdc++.so)"
  ASAN_OPTIONS=detect_leaks=0``.

Each mode compiles into its own cache entries (its flags are part of the key).
"""
from __future__ import annotations

import contextlib
import ctypes
import os
import threading

MODES = {
    "plain": [],
    # Frame pointers: the access log tells sites apart by their callers (cuda_emu.h).
    "checked": ["-DWG_EMU_CHECK", "-g", "-fno-omit-frame-pointer"],
    "sanitized": ["-DWG_EMU_CHECK", "-g", "-fno-omit-frame-pointer",
                  "-fsanitize=address,undefined", "-fno-sanitize-recover=all"],
}
ENV = "WAVEGEN_EMULATION"


class EmulationError(RuntimeError):
    """A checked emulation's finding: an access outside a tensor or a shared array, an
    uninitialised shared-memory read, a shared-memory race."""


_override = threading.local()


@contextlib.contextmanager
def using(emulation_mode: str):
    """Run this thread's emulated calls in ``emulation_mode`` instead of the
    environment's (wavegen.traffic measures in 'checked')."""
    if emulation_mode not in MODES:
        raise ValueError(f"{emulation_mode!r} is not an emulation mode; accepted: "
                         f"{', '.join(MODES)}")
    previous = getattr(_override, "mode", None)
    _override.mode = emulation_mode
    try:
        yield
    finally:
        _override.mode = previous


def mode() -> str:
    """The emulation mode of this thread's calls: using()'s, else WAVEGEN_EMULATION's."""
    override = getattr(_override, "mode", None)
    if override is not None:
        return override
    value = os.environ.get(ENV, "").strip() or "plain"
    if value not in MODES:
        raise ValueError(f"{ENV}={value!r} is not an emulation mode; accepted: "
                         f"{', '.join(MODES)}")
    return value


def flags(emulation_mode: str) -> list[str]:
    return MODES[emulation_mode]


def preload_hint() -> str:
    return ('run Python under LD_PRELOAD="$(c++ -print-file-name=libasan.so) '
            '$(c++ -print-file-name=libstdc++.so)" ASAN_OPTIONS=detect_leaks=0')


def require_sanitizer_runtime() -> None:
    """Loading a sanitized library into a process without AddressSanitizer's runtime
    makes the runtime abort the process; raise instead."""
    with open("/proc/self/maps") as f:
        if "libasan" in f.read():
            return
    raise RuntimeError(f"{ENV}=sanitized needs AddressSanitizer's runtime loaded before "
                       f"Python starts: {preload_hint()}")


_recordings: list[list] = []
_recordings_lock = threading.Lock()


@contextlib.contextmanager
def record():
    """Collect, while active, one dict per checked launch: kernel, threads per block and
    the emulator's counters (cuda_emu.h: blocks, requests, sectors, wavefronts, lanes)."""
    launches: list[dict] = []
    with _recordings_lock:
        _recordings.append(launches)
    try:
        yield launches
    finally:
        with _recordings_lock:
            _recordings.remove(launches)


def checked_entry(library: ctypes.CDLL, fn, name: str):
    """A checked kernel's entry point, ``call(packed, blocks, threads, extents)`` with
    ``extents`` the (address, bytes) of each parameter's tensor: raises EmulationError
    on a finding and hands the launch's counters to the active recordings."""
    library.wg_emu_finding.restype = ctypes.c_char_p
    library.wg_emu_counter_names.restype = ctypes.c_char_p
    names = library.wg_emu_counter_names().decode().split(",")
    values = (ctypes.c_double * len(names))()

    def call(packed, blocks, threads, extents):
        flat = (ctypes.c_ulonglong * (2 * len(extents)))(*(v for e in extents for v in e))
        found = fn(blocks, threads, ctypes.byref(packed), flat)
        library.wg_emu_counters(values)
        if found:
            raise EmulationError(f"{name}: {found} finding(s) in checked emulation; the "
                                 f"first: {library.wg_emu_finding().decode()}")
        launch = dict(kernel=name, threads=threads,
                      **dict(zip(names, values)))
        with _recordings_lock:
            for launches in _recordings:
                launches.append(launch)
    call.wants_extents = True
    return call
