"""Stage 4 (shared part): the on-disk cache of compiled artifacts.

An entry is a directory ``<readable-name>_<key12>/`` holding the source, the binary and
``meta.json`` (written last, with the binary's sha256). Entries are built in a temporary
directory and renamed into place, so concurrent processes never see half an entry; an
entry whose meta or binary does not check out is removed and rebuilt, never loaded.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Callable

_PACKAGE_DIR = Path(__file__).resolve().parent
# The modules whose code decides generated source and binaries: the planners, the renderer
# and the backends' compile steps (templates have their own digest; layers, ops and the
# runner do not change what is compiled, so editing them recompiles nothing).
CODEGEN_MODULES = ("program.py", "plan.py", "plan_dtcwt.py", "plan_scatter.py", "plan_taps.py",
                   "render.py", "cache.py", "backends/host.py", "backends/cuda.py",
                   "backends/nvrtc.py")
compiles = 0        # compilations in this process (tests use it to tell a hit from a miss)


def cache_root() -> Path:
    if os.environ.get("WAVEGEN_CACHE_DIR"):
        return Path(os.environ["WAVEGEN_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "wavegen"


@functools.lru_cache(maxsize=None)
def code_digest() -> str:
    """Digest of this package's code generation modules: a change to a planner, the
    renderer or a backend is a miss."""
    return digest_of(_PACKAGE_DIR)


def digest_of(package: Path) -> str:
    """Digest of the code generation modules (CODEGEN_MODULES) of the package in
    ``package``."""
    h = hashlib.sha256()
    for name in CODEGEN_MODULES:
        h.update(name.encode())
        h.update((package / name).read_bytes())
    return h.hexdigest()


def cache_key(material: dict) -> str:
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()


def _sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _valid(entry: Path, key: str) -> Path | None:
    """The binary of a complete, uncorrupted entry, else None."""
    try:
        meta = json.loads((entry / "meta.json").read_text())
        binary = entry / meta["binary"]
        if meta["key"] == key and _sha256_file(binary) == meta["binary_sha256"]:
            return binary
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return None


def fetch(name: str, material: dict, source: Callable[[], str], suffix: str,
          compile_fn: Callable[[Path, Path], None], first_use: str = "") -> tuple[Path, bool]:
    """Return (path of the binary, whether it was compiled now) for ``material``.

    ``source()`` renders the source text (called only on a miss); ``compile_fn(src, out)``
    compiles the file ``src`` into the file ``out`` or raises; ``first_use`` (what needed
    it first, e.g. the spec's library name) is recorded for ``cache list``.
    """
    key = cache_key(material)
    root = cache_root()
    entry = root / f"{name}_{key[:12]}"
    binary = _valid(entry, key)
    if binary is not None:
        try:
            os.utime(entry / "meta.json")        # its modification time is the last use
        except OSError:
            pass
        return binary, False
    if entry.exists():                       # corrupt or truncated: never load it
        shutil.rmtree(entry, ignore_errors=True)
    global compiles
    compiles += 1
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=root))
    try:
        src = tmp / f"source{suffix}"
        src.write_text(source())
        out = tmp / ("kernels" + (".cubin" if suffix == ".cu" else ".so"))
        compile_fn(src, out)
        meta = dict(key=key, name=name, first_use=first_use, material=material,
                    binary=out.name, binary_sha256=_sha256_file(out), created=time.time())
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1, sort_keys=True))
        try:
            os.rename(tmp, entry)
        except OSError:                      # another process renamed its copy first
            if _valid(entry, key) is None:
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    binary = _valid(entry, key)
    if binary is None:
        raise RuntimeError(f"wavegen cache entry {entry} failed validation right after it was "
                           "written; is the cache directory shared with a different machine?")
    return binary, True


def entries(current: Callable[[dict], dict] | None = None) -> list[dict]:
    """Every entry: its path, name, target, dtype, size, creation and last use, whether it
    is complete, and whether it is stale, i.e. built by another code digest, templates or
    toolchain (``current(material)`` gives what this machine would record for an entry of
    that target and family, or None where it cannot tell, e.g. CUDA without a GPU)."""
    root = cache_root()
    found = []
    if not root.is_dir():
        return found
    for entry in sorted(root.iterdir()):
        if entry.name.startswith(".tmp-") or not entry.is_dir():
            continue
        try:
            meta = json.loads((entry / "meta.json").read_text())
            used = (entry / "meta.json").stat().st_mtime
        except (OSError, ValueError):
            meta, used = {}, None
        material = meta.get("material", {})
        size = sum(f.stat().st_size for f in entry.rglob("*") if f.is_file())
        row = dict(path=str(entry), name=meta.get("name", entry.name),
                   first_use=meta.get("first_use", ""), bytes=size,
                   target=material.get("target"), dtype=material.get("dtype"),
                   created=meta.get("created"), used=used, valid=bool(meta), stale=None)
        now = current(material) if current and meta else None
        if now is not None:
            row["stale"] = [k for k, v in now.items() if material.get(k) != v]
        found.append(row)
    return found


def remove(paths) -> int:
    """Remove entries; returns the bytes freed."""
    freed = 0
    for path in paths:
        path = Path(path)
        freed += sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
        shutil.rmtree(path, ignore_errors=True)
    return freed


def clear() -> int:
    root = cache_root()
    removed = 0
    if root.is_dir():
        for entry in root.iterdir():
            shutil.rmtree(entry, ignore_errors=True)
            removed += 1
    return removed
