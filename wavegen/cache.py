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
compiles = 0        # compilations in this process (tests use it to tell a hit from a miss)


def cache_root() -> Path:
    if os.environ.get("WAVEGEN_CACHE_DIR"):
        return Path(os.environ["WAVEGEN_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "wavegen"


@functools.lru_cache(maxsize=None)
def code_digest() -> str:
    """Digest of wavegen's own Python code: a change to the planner or renderer is a miss."""
    h = hashlib.sha256()
    for path in sorted(_PACKAGE_DIR.rglob("*.py")):
        h.update(path.relative_to(_PACKAGE_DIR).as_posix().encode())
        h.update(path.read_bytes())
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
          compile_fn: Callable[[Path, Path], None]) -> tuple[Path, bool]:
    """Return (path of the binary, whether it was compiled now) for ``material``.

    ``source()`` renders the source text (called only on a miss); ``compile_fn(src, out)``
    compiles the file ``src`` into the file ``out`` or raises.
    """
    key = cache_key(material)
    root = cache_root()
    entry = root / f"{name}_{key[:12]}"
    binary = _valid(entry, key)
    if binary is not None:
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
        meta = dict(key=key, name=name, material=material, binary=out.name,
                    binary_sha256=_sha256_file(out), created=time.time())
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


def entries() -> list[dict]:
    root = cache_root()
    found = []
    if root.is_dir():
        for entry in sorted(root.iterdir()):
            if entry.name.startswith(".tmp-"):
                continue
            try:
                meta = json.loads((entry / "meta.json").read_text())
            except (OSError, ValueError):
                meta = {}
            size = sum(f.stat().st_size for f in entry.rglob("*") if f.is_file())
            found.append(dict(path=str(entry), name=meta.get("name", entry.name),
                              bytes=size, valid=bool(meta)))
    return found


def clear() -> int:
    root = cache_root()
    removed = 0
    if root.is_dir():
        for entry in root.iterdir():
            shutil.rmtree(entry, ignore_errors=True)
            removed += 1
    return removed
