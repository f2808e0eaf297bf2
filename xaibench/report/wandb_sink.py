"""Mirror a sweep to Weights & Biases (offline by default). W&B is a mirror, never the source of truth.

Per cell, one W&B run grouped by the sweep id: config = the cell's config sections and key; summary =
``<metric>/mean``, ``/ci_low``, ``/ci_high``, ``/nan_rate``, ``/n``; a ``rows`` table with the cell's long-format
rows; a ``gallery`` image of the cell's stored attributions (read from the store, never recomputed).
Per sweep, one ``summary`` run (job type ``sweep``): the summary table, the method ranks and the report's
figures; a table longer than W&B shows (``Table.MAX_ROWS``) is logged as the rows it shows, with
``summary.parquet`` (every row) as the run's artifact ``<sweep_id>-summary``.

Offline runs land under ``logger.dir`` (default: the sweep folder, so ``<sweep>/wandb/offline-run-*``);
``WANDB_DIR`` points there and W&B's cache, data, config and artifact dirs into its ``wandb/``, so nothing is
written into ``$HOME``. Upload
later with ``wandb sync <sweep>/wandb/offline-run-*``, or set ``logger.mode=online``.
"""
from __future__ import annotations

import gc
import io
import os
import re
import sys
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd
from omegaconf import DictConfig, OmegaConf

from xaibench.engine.cell_result import CellResult
from xaibench.results.aggregate import SummaryPieces
from xaibench.results.memory import release_memory

GALLERY_SAMPLES = 4
SUMMARY_FIELDS = ("mean", "ci_low", "ci_high", "nan_rate", "n")
# Under <folder>/wandb/, beside the offline runs (a data/ in the sweep folder looked like dataset files).
_WANDB_DIRS = (("WANDB_DIR", ""), ("WANDB_CACHE_DIR", "wandb/cache"), ("WANDB_DATA_DIR", "wandb/data"),
               ("WANDB_CONFIG_DIR", "wandb/config"), ("WANDB_ARTIFACT_DIR", "wandb/artifacts"))


def wandb_folder(cfg: DictConfig) -> Path:
    """Where offline runs go: ``logger.dir``, else the sweep folder."""
    logger = cfg.logger
    folder = Path(logger.get("dir") or Path(str(cfg.results_dir)) / str(cfg.sweep_id)).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@contextmanager
def _wandb_environment(folder: Path, offline: bool) -> Iterator[None]:
    """Point W&B's directories at ``folder`` for one run, then restore the environment.

    Offline, every directory is forced there (nothing in ``$HOME``); online, a user's own settings win.
    """
    saved = {variable: os.environ.get(variable) for variable, _ in _WANDB_DIRS}
    for variable, sub in _WANDB_DIRS:
        if offline or variable not in os.environ:
            os.environ[variable] = str(folder / sub)
    try:
        yield
    finally:
        for variable, value in saved.items():
            if value is None:
                os.environ.pop(variable, None)
            else:
                os.environ[variable] = value


@contextmanager
def _run(cfg: DictConfig, *, name: str, job_type: str, config: Mapping[str, Any]):
    """A W&B run whose every file stays under :func:`wandb_folder`; finished on exit."""
    import wandb

    folder = wandb_folder(cfg)
    logger = cfg.logger
    mode = str(logger.get("mode", "offline"))
    with _wandb_environment(folder, offline=mode != "online"):
        run = wandb.init(
            project=logger.get("project", "xaibench"),
            entity=logger.get("entity"),
            mode=mode,
            dir=str(folder),
            group=str(cfg.sweep_id),
            job_type=job_type,
            name=name,
            config=dict(config),
            reinit="finish_previous",
            settings=wandb.Settings(silent=True, console="off"),
        )
        try:
            yield run
        finally:
            run.finish()


def wait_for_runs() -> None:
    """Return once W&B has written every run this process logged: ``run.finish()`` returns before W&B's service
    has written the run's records (offline, a run file read at once often held only its header, and a
    ``wandb sync`` of it then would upload an unfinished run); ``wandb.teardown()`` waits for them and stops the
    service (the next run starts another; a process's exit does the same). Nothing happens when W&B was never
    used, or while a run of the user's own is active (it would be finished)."""
    wandb = sys.modules.get("wandb")
    if wandb is None or getattr(wandb, "run", None) is not None:
        return
    wandb.teardown()


def log_cell(result: CellResult, cfg: DictConfig) -> str:
    """Log one cell (config, summary per metric, rows table, gallery image); returns the run's directory."""
    import wandb

    rows = result.rows
    first = rows.iloc[0]
    config = {
        "cell_key": result.key,
        **{k: OmegaConf.to_container(cfg[k], resolve=True) for k in ("model", "dataset", "method", "metrics")},
        "seed": int(cfg.seed),
        "n_samples": int(cfg.n_samples),
        "sweep_id": str(cfg.sweep_id),
    }
    name = f"{first['model']}-{first['dataset']}-{first['method']}-s{int(first['seed'])}"
    with _run(cfg, name=name, job_type="cell", config=config) as run:
        run.log({"rows": wandb.Table(dataframe=_plain(rows))})
        for key, value in cell_summary(rows).items():
            run.summary[key] = value
        run.summary["status"] = result.status
        run.summary["cell_key"] = result.key
        image = _cell_gallery(rows, str(cfg.store_dir))
        if image is not None:
            run.log({"gallery": wandb.Image(image, caption=f"{name}: stored attributions")})
        return str(run.dir)


def cell_summary(rows: pd.DataFrame) -> dict[str, float]:
    """``<metric>/<field>`` for mean, CI, NaN rate and n of each metric of one cell (from ``summarize``)."""
    from xaibench.results.aggregate import summarize

    out: dict[str, float] = {}
    for _, row in summarize(rows).iterrows():
        for field in SUMMARY_FIELDS:
            if field in row and pd.notna(row[field]):
                out[f"{row['metric']}/{field}"] = int(row[field]) if field == "n" else float(row[field])
    return out


def log_sweep(folder: Path, table: pd.DataFrame | None, summary: pd.DataFrame | SummaryPieces, cfg: DictConfig,
              figures: Mapping[str, Any] | Iterable[tuple[str, Any]] | None = None,
              average_ranks: pd.DataFrame | None = None, *, cells: pd.Series | None = None,
              n_rows: int | None = None) -> str:
    """One ``summary`` run for the sweep: the summary table, the per-group ranks, the average ranks (statistics'
    ``average_ranks``) and the report's figures.

    ``figures``: name -> matplotlib Figure, or (name, Figure) pairs drawn lazily (``streamed_figures.
    iter_streamed_figures``): each is then rendered, logged and cleared before the next is drawn, so the run holds
    one figure at a time (the metric-scores figure of 1,000 cells alone holds ~160 MB of matplotlib objects).

    ``summary``: a frame, or the streamed summary's ``SummaryPieces`` (its tables are logged from its first parts:
    the whole summary is not held).

    ``cells``: each cell's status (cell key -> ok / error / not_applicable), the cells the console counts at the
    end of the sweep (``N cells (a error, b ok)``), including a cell whose rows all belong to another cell with
    a larger metric suite (the table keeps each scored sample once). Default: the table's cell keys. Logged as
    ``n_cells`` and ``cells/<status>``. ``table`` may be None (a streamed sweep: the figures were drawn from its
    file) when ``cells`` and ``n_rows`` (the table's length) are given.
    """
    import wandb

    if cells is None:
        from xaibench.sweep.finishing import _cell_statuses

        cells = _cell_statuses(table)
    n_rows = len(table) if n_rows is None else n_rows
    config = {"sweep_id": str(cfg.sweep_id), "sweep_dir": str(folder), "n_rows": int(n_rows),
              "n_cells": int(len(cells))}
    with _run(cfg, name=f"{cfg.sweep_id}-summary", job_type="sweep", config=config) as run:
        whole = folder / "summary.parquet"
        artifact = summary_artifact(str(cfg.sweep_id)) if whole.is_file() else None
        limit = int(wandb.Table.MAX_ROWS)
        head, n_summary = _head(summary, limit)
        cut = _log_table(run, "summary", head, whole, artifact, n_rows=n_summary)
        del head
        ranks, n_ranks = _head(summary, limit, ranked=True)
        if n_ranks:
            cut |= _log_table(run, "ranks", ranks, whole, artifact, n_rows=n_ranks)
        del ranks
        if average_ranks is not None and len(average_ranks):
            cut |= _log_table(run, "average_ranks", average_ranks, whole, artifact)
        if cut and artifact is not None:
            _log_summary_file(run, whole, artifact)
        gc.collect()
        release_memory()  # the tables' conversions, before the figures are drawn
        lazy = figures is not None and not isinstance(figures, Mapping)
        for name, figure in (figures if lazy else (figures or {}).items()):
            run.log({f"figures/{name}": wandb.Image(_to_image(figure), caption=name)})
            if lazy:  # ours alone: its artists, canvas and pixel buffer go now (the figure is a reference cycle)
                figure.clear()
                del figure
                gc.collect()
                release_memory()
        run.summary["n_cells"] = config["n_cells"]
        for status in ("ok", "error", "not_applicable"):
            run.summary[f"cells/{status}"] = int((cells == status).sum())
        return str(run.dir)


def _log_table(run: Any, key: str, frame: pd.DataFrame, whole: Path, artifact: str | None, *,
               n_rows: int | None = None) -> bool:
    """Log ``frame`` (the first rows of a table of ``n_rows`` rows, default ``len(frame)``) as the W&B table
    ``key``, with ``<key>/rows`` and ``<key>/rows_logged`` in the run summary; returns True when it was cut.

    W&B writes only the first ``wandb.Table.MAX_ROWS`` rows (10,000) of a logged table to the run's file, yet keeps
    every row (up to 200,000) as Python lists for the run's table artifact: the summary of 10,000 cells (120,000
    rows) and its ranks held ~170 MB there. A longer table is logged as its first ``MAX_ROWS`` rows (what the
    run's file showed anyway; its table artifact now holds those rows too), said in one warning line naming the
    file with every row, which ``log_sweep`` logs as the run's artifact ``artifact`` (None: the file is missing).
    """
    import wandb

    n_rows = len(frame) if n_rows is None else n_rows
    logged = min(len(frame), int(wandb.Table.MAX_ROWS))
    run.log({key: _table(frame.iloc[:logged])})
    run.summary[f"{key}/rows"], run.summary[f"{key}/rows_logged"] = n_rows, logged
    if logged < n_rows:
        also = f" and in the run's artifact {artifact}" if artifact else ""
        print(f"xaibench: warning: the W&B run's {key} table holds the first {logged:,} of its {n_rows:,} rows "
              f"(W&B shows no more); all of them are in {whole}{also}", file=sys.stderr, flush=True)
    return logged < n_rows


def _head(summary: pd.DataFrame | SummaryPieces, limit: int, *, ranked: bool = False) -> tuple[pd.DataFrame, int]:
    """The summary's first ``limit`` rows (``ranked``: of its ranked rows, in the ranks table's columns) and how
    many rows it has (ranked ones); a ``SummaryPieces`` is read a part at a time, never held whole."""
    heads, n_rows = [], 0
    for part in [summary] if isinstance(summary, pd.DataFrame) else summary.pieces():
        if ranked:
            part = part[part["rank"].notna()] if "rank" in part else part.iloc[0:0]
            part = part[_rank_columns(part)]
        if n_rows < limit or not heads:
            heads.append(part.iloc[:max(limit - n_rows, 0)])
        n_rows += len(part)
    if not heads:
        return pd.DataFrame(), 0
    return (heads[0] if len(heads) == 1 else pd.concat(heads, ignore_index=True)), n_rows


def _log_summary_file(run: Any, whole: Path, artifact: str) -> None:
    """Log ``whole`` (the sweep's ``summary.parquet``, every summary row) as the run's artifact ``artifact`` (type
    ``results``), for the tables W&B cannot hold whole; ``summary/artifact`` in the run summary names it."""
    import wandb

    files = wandb.Artifact(artifact, type="results", description=f"every row of the sweep's summary ({whole.name})")
    files.add_file(str(whole), name=whole.name)
    run.log_artifact(files)
    run.summary["summary/artifact"] = f"{artifact}:latest/{whole.name}"


def summary_artifact(sweep_id: str) -> str:
    """The artifact name of a sweep's summary file: ``<sweep_id>-summary`` in the characters W&B accepts."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", f"{sweep_id}-summary")


def _table(frame: pd.DataFrame):  # -> wandb.Table
    """``wandb.Table(dataframe=_plain(frame))`` without a converted copy of the frame and with one string object
    per distinct text: the same rows, values, column types and logged files (tested), in less memory.

    W&B keeps every row of a logged table (up to ``Table.MAX_ARTIFACT_ROWS``, 200,000: the run's table artifact;
    the run's own file gets the first ``MAX_ROWS``) as Python lists. Built from the frame, each text cell was a
    string object of its own (a 120,000-row summary: ~1.7 million strings) and the frame was copied first.
    Here the frame is converted ``_SLICE`` rows at a time and each row's values are the ones ``Table(dataframe=)``
    takes (``frame[column].values[row]``), a text equal to one seen before being that string object.
    """
    import wandb

    table = wandb.Table(columns=list(frame.columns))
    texts: dict[str, str] = {}
    for start in range(0, len(frame), _SLICE):
        piece = _plain(frame.iloc[start:start + _SLICE])
        for row in zip(*(piece[column].values for column in piece.columns)):
            table.add_data(*[texts.setdefault(value, value) if type(value) is str else value for value in row])
    return table


_SLICE = 4096  # _table: rows converted at a time


def _rank_columns(summary: pd.DataFrame) -> list[str]:
    wanted = ["dataset", "dataset_label", "model", "model_label", "variant", "metric", "method", "rank", "mean"]
    return [c for c in wanted if c in summary.columns]


def _plain(frame: pd.DataFrame) -> pd.DataFrame:
    """W&B tables take plain object/number columns, not pandas' nullable extension types; a missing value is None
    (W&B types ``pd.NA`` as an object, so a summary with an error row's missing rank failed to log)."""
    nullable = [c for c in frame.columns if str(frame[c].dtype) in ("string", "Int64", "boolean")]
    if not nullable:
        return frame
    return frame.assign(**{c: frame[c].astype(object).where(frame[c].notna(), None) for c in nullable})


def _cell_gallery(rows: pd.DataFrame, store: str):
    """The cell's first samples as a gallery image (PIL), or None when nothing was explained."""
    from xaibench.errors import UserError
    from xaibench.results.explanations import explanations

    if "explanation_key" not in rows or not (rows["explanation_key"].fillna("") != "").any():
        return None
    try:
        cells = explanations(rows, store=store, samples=GALLERY_SAMPLES)
    except UserError:
        return None
    from xaibench.report.explanation_figures import cell_gallery

    return _to_image(cell_gallery(cells))


def _to_image(figure):
    """A matplotlib Figure rendered to a PIL image (PNG at 150 dpi)."""
    from PIL import Image

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=150, bbox_inches="tight")
    buffer.seek(0)
    return Image.open(buffer)
