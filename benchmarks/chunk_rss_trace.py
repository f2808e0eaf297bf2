"""Resident memory of ``xaibench summary TABLE -o CSV`` chunk by chunk (one fresh process; print + JSON).

Usage::

    PYTHONPATH=. .venv/bin/python benchmarks/chunk_rss_trace.py table.parquet summary.csv trace.json

``bench_collect.py`` reports one peak per run; this says where it is set. Before and after every
``Summarizer.add`` it reads the resident set (``/proc/self/statm``) and the peak since the last reading
(``VmHWM``, then reset through ``/proc/self/clear_refs``), so each chunk has: ``pre_peak`` (the peak while the
chunk was read, cut and converted), ``rss_before`` (after ``release_memory``), ``add_peak``, ``rss_after``, and
what the allocators hold live at ``rss_before``: glibc (``mallinfo2``: in use, free, heap size), Arrow's current
default pool (``pa.total_allocated_bytes``) and each of pyarrow's pools. Three phases follow: ``before_finish``
(the peak since the last chunk), ``finish`` (the summary's end: every row's CIs and ranks, ``Summarizer.finish``)
``written`` (its pieces written to the CSV, ``collect.write_pieces``) and ``end`` (the summary printed). Resident memory that neither allocator holds
live is what an allocator kept (docs/speed.md, mem19, mem21). The process first sets Arrow's allocator as
``xaibench`` does (``memory.configure_arrow_allocator``); set ``ARROW_DEFAULT_MEMORY_POOL`` /
``JE_ARROW_MALLOC_CONF`` to compare others. Linux only.
"""
from __future__ import annotations

import contextlib
import ctypes
import json
import os
import statistics
import sys
import time
from pathlib import Path


def rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_mb() -> float:
    """``VmHWM`` since the last :func:`reset_peak`."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def reset_peak() -> None:
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                    "fsmblks", "uordblks", "fordblks", "keepcost")]


def held_mb() -> dict:
    """What glibc and Arrow's default pool hold (MB)."""
    import pyarrow as pa

    out = {"arrow": pa.total_allocated_bytes() / 2**20,  # the current default pool's live bytes; each pool's:
           **{f"arrow_{name}": getattr(pa, f"{name}_memory_pool")().bytes_allocated() / 2**20
              for name in ("jemalloc", "mimalloc", "system")}}
    try:
        mallinfo2 = ctypes.CDLL("libc.so.6").mallinfo2
    except (OSError, AttributeError):
        return out
    mallinfo2.restype = _MallInfo2
    info = mallinfo2()
    return {**out, "glibc_used": (info.uordblks + info.hblkhd) / 2**20, "glibc_free": info.fordblks / 2**20,
            "glibc_heap": info.arena / 2**20}


def main() -> None:
    table, csv, out = sys.argv[1:4]
    cpu = time.process_time()
    from xaibench.results.memory import configure_arrow_allocator

    configure_arrow_allocator("summary")  # as ``xaibench summary`` does before pyarrow loads (env vars: others)
    from xaibench.cli import main as cli
    from xaibench.results import aggregate

    records, peak = [], [0.0]
    add, finish = aggregate.Summarizer.add, aggregate.Summarizer.finish

    def traced_add(self, frame):
        before = peak_mb()
        peak[0] = max(peak[0], before)
        rss, held = rss_mb(), held_mb()
        reset_peak()
        add(self, frame)
        during = peak_mb()
        peak[0] = max(peak[0], during)
        records.append({"rows": len(frame), "pre_peak": before, "rss_before": rss, **held, "add_peak": during,
                        "rss_after": rss_mb()})
        reset_peak()

    def traced_finish(self):
        before = peak_mb()
        peak[0] = max(peak[0], before)
        records.append({"phase": "before_finish", "pre_peak": before, "rss": rss_mb(), **held_mb()})
        reset_peak()
        pieces = finish(self)
        during = peak_mb()  # the CIs and ranks of every row (aggregate); then the pieces are written and printed
        peak[0] = max(peak[0], during)
        records.append({"phase": "finish", "pre_peak": during, "rss": rss_mb(), **held_mb()})
        reset_peak()
        return pieces

    from xaibench.results import collect

    write_pieces = collect.write_pieces

    def traced_write_pieces(summary, path):
        written = write_pieces(summary, path)
        during = peak_mb()
        peak[0] = max(peak[0], during)
        records.append({"phase": "written", "pre_peak": during, "rss": rss_mb(), **held_mb()})
        reset_peak()
        return written

    aggregate.Summarizer.add, aggregate.Summarizer.finish = traced_add, traced_finish
    collect.write_pieces = traced_write_pieces
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        try:
            cli(["summary", table, "-o", csv])
        except SystemExit:
            pass
    end = peak_mb()
    peak[0] = max(peak[0], end)
    records.append({"phase": "end", "pre_peak": end, "rss": rss_mb(), **held_mb()})
    Path(out).write_text(json.dumps({"cpu_seconds": time.process_time() - cpu, "peak_rss_mb": peak[0],
                                     "chunks": records}))
    chunks = [r for r in records if "rows" in r]
    print(f"{len(chunks)} chunks, peak {peak[0]:.0f} MB, CPU {time.process_time() - cpu:.1f} s")
    for start in range(0, len(chunks), 34):
        part = chunks[start:start + 34]
        print(f"chunks {start}-{start + len(part) - 1}: RSS between chunks (median) "
              f"{statistics.median(r['rss_before'] for r in part):.0f} MB, highest peak "
              f"{max(max(r['pre_peak'], r['add_peak']) for r in part):.0f}; live: Arrow "
              f"{statistics.median(r['arrow'] for r in part):.0f}, glibc "
              f"{statistics.median(r.get('glibc_used', 0) for r in part):.0f} MB")
    for record in records:
        if "phase" in record:
            print(f"{record['phase']}: peak {record['pre_peak']:.0f} MB, RSS {record['rss']:.0f}")


if __name__ == "__main__":
    main()
