"""One job of a sweep: its cell read from the store or computed, its rows written to ``cells/<cell_key>.parquet``."""
from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
from omegaconf import DictConfig, ListConfig, OmegaConf

from xaibench.engine.cell import CellSpec
from xaibench.engine.cell_result import CellResult
from xaibench.engine.stamp import stamp_rows
from xaibench.engine.store import Store, atomic_write_bytes, table_to_parquet_bytes
from xaibench.report.progress import set_enabled as set_progress
from xaibench.results.collect import SWEEP_CELLS, write_table
from xaibench.results.schema import is_conformed
from xaibench.sweep.layout import sweep_dir
from xaibench.sweep.progress_line import _progress_line
from xaibench.sweep.wandb_run import _log


def run_job(cfg: DictConfig, label: str = "", *, cell: CellSpec | None = None,
            stored: CellResult | None = None) -> CellResult:
    """Run one cell from a composed config, record its rows in the sweep folder, log it, print one line.

    ``cell`` is ``CellSpec.from_config(cfg)`` when the caller has it; ``stored`` the cell's stored rows, already
    stamped, when the caller read them (``stored_cells``).
    """
    cell = cell or CellSpec.from_config(cfg)
    set_progress(bool(cfg.get("progress", True)))  # status lines inside long cells (stderr)
    if cfg.get("verbose", False):  # libraries' loading bars and info logs (Hugging Face) only when asked
        os.environ["XAIBENCH_VERBOSE"] = "1"
    result = stored or stored_cell(cell, cfg) or _compute_cell(cell, cfg, job=_job_number(label))
    cell_file = sweep_dir(cfg) / SWEEP_CELLS / f"{result.key}.parquet"
    if result.parquet is not None:  # StorageError: full disk
        atomic_write_bytes(cell_file, result.parquet)
    else:
        write_table(result.rows, cell_file)
    _log(cfg, result)
    if cfg.get("progress", True):
        print(_progress_line(cell, result, label), flush=True)
    return result


def _job_number(label: str) -> int:
    return int(label.rsplit(" ", 1)[-1]) if label.rsplit(" ", 1)[-1].isdigit() else 0


def stored_cell(cell: CellSpec, cfg: DictConfig) -> CellResult | None:
    """The cell's stored rows, read from the store alone (no torch, no model, no data), or None.

    Only for cells fully described by their key; cells that read user files go through ``run_cell``, which checks
    the data revision and weights hash first.
    """
    if cell.reads_user_files():
        return None
    started = time.perf_counter()
    frame = Store(cfg.store_dir).get_frame("cells", cell.key)
    if frame is None:
        return None
    device = "" if cell.device == "auto" else cell.device  # scored rows keep their stage's (not_applicable: "")
    frame = stamp_rows(frame, sweep_id=str(cfg.sweep_id), device=device, model_label=cell.model_label,
                       dataset_label=cell.dataset_label, ran=False)
    return CellResult(cell.key, frame, True, time.perf_counter() - started)


def stored_cells(configs: Sequence[DictConfig], cells: Sequence[CellSpec],
                 store_dirs: Sequence[str] | None = None) -> dict[int, CellResult]:
    """``stored_cell`` for every job at once (job index -> result), for the jobs whose cells the store holds.

    One pass: each artefact is verified and read as an Arrow table, the tables are converted to pandas and
    stamped together, then cut back into cells (about 1/5 of the CPU of reading and stamping them one by one).
    The rows are those ``stored_cell`` gives. Artefacts of another schema are left to ``stored_cell``.
    ``store_dirs``: the configs' resolved ``store_dir`` when the caller has them (each is an interpolation).
    """
    started = time.perf_counter()
    stores: dict[str, Store] = {}
    hits: list[tuple[int, pa.Table]] = []
    store_dirs = store_dirs or [str(cfg.store_dir) for cfg in configs]
    for index, (cell, store_dir) in enumerate(zip(cells, store_dirs)):
        if cell.reads_user_files():
            continue
        store = stores.setdefault(store_dir, Store(store_dir))
        table = store.get_table("cells", cell.key)
        if table is not None and (not hits or table.schema.equals(hits[0][1].schema, check_metadata=True)):
            hits.append((index, table))
    if not hits:
        return {}
    frame = pa.concat_tables([table for _, table in hits]).to_pandas()
    if not is_conformed(frame):
        return {}
    lengths = [table.num_rows for _, table in hits]

    def per_row(values: list[str]) -> np.ndarray:
        return np.repeat(np.asarray(values, dtype=object), lengths)

    jobs = [(configs[index], cells[index]) for index, _ in hits]
    frame = stamp_rows(frame, sweep_id=per_row([str(cfg.sweep_id) for cfg, _ in jobs]),
                       device=per_row(["" if cell.device == "auto" else cell.device for _, cell in jobs]),
                       model_label=per_row([cell.model_label for _, cell in jobs]),
                       dataset_label=per_row([cell.dataset_label for _, cell in jobs]), ran=False)
    table = pa.Table.from_pandas(frame, preserve_index=False)  # a slice encodes as the cell's own frame would
    bounds = np.cumsum([0, *lengths])
    seconds = (time.perf_counter() - started) / len(hits)
    return {index: CellResult(cells[index].key, frame.iloc[start:stop].reset_index(drop=True), True, seconds,
                              parquet=table_to_parquet_bytes(table.slice(start, stop - start)))
            for (index, _), start, stop in zip(hits, bounds[:-1], bounds[1:])}


def _compute_cell(cell: CellSpec, cfg: DictConfig, job: int = 0) -> CellResult:
    import torch

    from xaibench.engine.runner import run_cell

    torch.set_num_threads(int(cfg.get("threads", 1)))
    if cfg.get("devices") is None:
        return run_cell(cell, Store(cfg.store_dir), sweep_id=str(cfg.sweep_id))
    from dataclasses import replace

    from xaibench.engine.device_slots import device_slot, expand_devices

    asked = OmegaConf.to_container(cfg.devices) if isinstance(cfg.devices, DictConfig | ListConfig) else cfg.devices
    devices = expand_devices(asked)
    if asked == "all" and devices == ["cpu"]:  # no GPU here: the CPU is no device to hold, jobs run side by side
        return run_cell(replace(cell, device="cpu"), Store(cfg.store_dir), sweep_id=str(cfg.sweep_id))
    with device_slot(devices, start=job) as (_, device):  # the machine's slots: other sweeps' jobs hold them too
        return run_cell(replace(cell, device=device), Store(cfg.store_dir), sweep_id=str(cfg.sweep_id))


def _write_job_config(job_dir: Path, cfg: DictConfig) -> None:
    """A record for the user, as Hydra leaves it (results never read it back: no fsync needed)."""
    import yaml

    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # libyaml: OmegaConf.to_yaml costs 5x more per job
    (job_dir / ".hydra").mkdir(parents=True, exist_ok=True)
    text = yaml.dump(OmegaConf.to_container(cfg, resolve=False), Dumper=dumper, sort_keys=False)
    (job_dir / ".hydra" / "config.yaml").write_text(text)
