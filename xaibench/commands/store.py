"""``xaibench store verify|gc``: check every artefact of a store; remove what no sweep needs."""
from __future__ import annotations

import argparse

DESCRIPTION = "Check a store's artefacts (verify) or remove temp files, free locks, damaged and unused ones (gc)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("verify", "gc"), help="verify: check every artefact; gc: clean up")
    parser.add_argument("store_dir", nargs="?", default=None,
                        help="the store (default: $XAIBENCH_STORE or results/store)")
    parser.add_argument("--min-age", type=float, default=3600.0, metavar="SECONDS",
                        help="gc: keep temp files and unused artefacts younger than this (default 3600)")
    parser.add_argument("--dry-run", action="store_true", help="gc: list what would be removed, remove nothing")
    parser.add_argument("--legacy", action="store_true",
                        help="gc: also delete the folders of a format-1 store (written by xaibench before the v2 layout)")


def run(args: argparse.Namespace) -> int:
    import os
    from pathlib import Path

    from xaibench.engine.store import Store
    from xaibench.engine.store_maintenance import gc, verify
    from xaibench.errors import UserError
    from xaibench.results.folder_paths import missing_folder

    root = Path(args.store_dir or os.environ.get("XAIBENCH_STORE", "results/store"))
    if not root.is_dir():
        raise UserError(missing_folder(root, "store directory"))
    if args.min_age < 0:
        raise UserError(f"--min-age must be >= 0, got {args.min_age}")
    store = Store(root)
    if not store.base.is_dir() and not verify(store).legacy_files:  # a mistyped folder "verified" with exit 0
        raise UserError(f"{root} holds no xaibench store (no {store.base.name}/ folder); give the store_dir your "
                        f"sweeps used (default results/store)")
    if args.action == "verify":
        return _print_verify(verify(store), root)
    report = gc(store, min_age_s=args.min_age, dry_run=args.dry_run, legacy=args.legacy)
    if args.dry_run:  # what --dry-run promises: the list, then the totals
        for path, what, size in report.files:
            print(f"would remove {path} ({what.removesuffix('s')}, {_size(size)})")
    done = ", ".join(f"{n} {what}" for what, n in sorted(report.removed.items()))
    verb = "would remove" if args.dry_run else "removed"
    print(f"{root}: {verb} {done} ({_size(report.freed_bytes)})" if done else f"{root}: nothing to remove", end="")
    print(f"; kept {report.kept_young} unused artefacts younger than {args.min_age:g} s")
    return 0


def _size(n_bytes: int) -> str:
    """``0 bytes``, ``512 bytes``, ``3.4 kB``, ``12.5 MB``, ``1.20 GB``."""
    if n_bytes < 1000:
        return f"{n_bytes} bytes"
    for unit, scale in (("kB", 1e3), ("MB", 1e6)):
        if n_bytes < 1000 * scale:
            return f"{n_bytes / scale:.1f} {unit}"
    return f"{n_bytes / 1e9:.2f} GB"


def _print_verify(report, root) -> int:
    checked = ", ".join(f"{n} {kind}" for kind, n in sorted(report.checked.items())) or "no artefacts"
    for path, reason in report.damaged:
        print(f"damaged: {path}: {reason}")
    print(f"{root}: checked {checked}; {len(report.damaged)} damaged, {report.temp_files} orphaned temp files"
          + (f", {report.legacy_files} files of the old format-1 layout (ignored; gc --legacy deletes them)"
             if report.legacy_files else ""))
    return 1 if report.damaged else 0
