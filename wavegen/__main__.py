"""``python -m wavegen cache [list|clear]`` and ``python -m wavegen gallery [DIR]``."""
import argparse
import sys
from pathlib import Path

from . import cache, gallery


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m wavegen")
    sub = parser.add_subparsers(dest="command", required=True)
    c = sub.add_parser("cache", help="list or clear compiled kernels on disk")
    c.add_argument("action", choices=("list", "clear"), nargs="?", default="list")
    g = sub.add_parser("gallery", help="regenerate the checked-in generated/ sources")
    g.add_argument("directory", nargs="?", default="generated")
    args = parser.parse_args(argv)
    if args.command == "cache":
        if args.action == "clear":
            print(f"removed {cache.clear()} entries from {cache.cache_root()}")
        else:
            found = cache.entries()
            print(f"{len(found)} entries in {cache.cache_root()}")
            for e in found:
                flag = "" if e["valid"] else "  (incomplete; rebuilt on next use)"
                print(f"  {e['bytes'] / 1024:8.1f} KiB  {Path(e['path']).name}{flag}")
    else:
        for name in gallery.write(Path(args.directory)):
            print(f"wrote {Path(args.directory) / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
