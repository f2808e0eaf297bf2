"""The sweep's W&B mirror: each cell logged as it is written, and the sweep's summary run at its end. W&B mirrors
the table: a W&B failure is reported, never fails the sweep."""
from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
from omegaconf import DictConfig

from xaibench.engine.cell_result import CellResult
from xaibench.results.aggregate import SummaryPieces
from xaibench.results.collect import TABLE_NAME
from xaibench.results.groups import COMPARISON_COLUMNS
from xaibench.results.memory import releasable_arrow_memory
from xaibench.sweep.layout import WANDB_CACHED, WANDB_SUMMARY, sweep_dir


def _log(cfg: DictConfig, result: CellResult) -> None:
    logger = cfg.get("logger") or {}
    if logger.get("name", "none") == "none":
        return
    if result.cached and not logger.get("log_cached", False):
        # Already mirrored when it was computed; rerunning a sweep does not duplicate W&B runs. A marker file
        # (not a counter: jobs may run in other processes) lets the end of the sweep say how many were skipped.
        marker = sweep_dir(cfg) / WANDB_CACHED / result.key
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()
        return
    from xaibench.report.wandb_sink import log_cell

    try:
        log_cell(result, cfg)
    except Exception as error:  # noqa: BLE001 - W&B mirrors the table; its failure never loses a result
        print(f"xaibench: warning: W&B logging failed ({type(error).__name__}: {error}); "
              f"rows are safe in {sweep_dir(cfg)}", file=sys.stderr, flush=True)


def _log_sweep(cfg: DictConfig, folder: Path, summary: pd.DataFrame | SummaryPieces, statuses: pd.Series,
               table: pd.DataFrame | None = None, n_rows: int | None = None) -> None:
    """W&B sweep run (summary, ranks, figures); a W&B failure is reported, never fails the sweep.

    ``statuses``: each cell's status, as the console counts the cells (some may have no row of their own in the
    table: ``_with_shared``). ``table``: the sweep's table; None for a streamed sweep (``n_rows`` rows, ``summary``
    its ``SummaryPieces``): the ranks come from the summary's columns they read, the figures from the columns they
    draw and from ``table.parquet`` read one (model, dataset) range at a time (``report/streamed_figures.py``), the
    tables from the summary's first parts: the same run without holding the table or the whole summary.
    """
    logger = cfg.get("logger") or {}
    if logger.get("name", "none") != "wandb":
        return
    skipped = len(list((folder / WANDB_CACHED).glob("*")))
    if skipped:
        print(f"{skipped} cells were cached and not re-logged; add logger.log_cached=true to log them", flush=True)
    if skipped and skipped >= len(statuses) and (folder / WANDB_SUMMARY).exists():
        return  # nothing new, and the sweep's summary run was logged when its cells were (not so if they were
        # computed without logger=wandb: the first logger=wandb rerun then logs the summary run)
    try:
        with releasable_arrow_memory():  # what each of its phases frees goes back to the system (memory.py)
            _log_summary_run(cfg, folder, summary, statuses, table, n_rows)
        (folder / WANDB_SUMMARY).touch()
        if logger.get("mode", "offline") == "offline":  # where the runs are, and how to upload them
            from xaibench.report.wandb_sink import wandb_folder

            runs = wandb_folder(cfg) / "wandb"
            print(f"W&B (offline): runs in {runs}; upload them with: wandb sync {runs}/offline-run-*", flush=True)
    except Exception as error:  # noqa: BLE001 - W&B mirrors the table; its failure never loses a result
        print(f"xaibench: warning: W&B sweep logging failed ({type(error).__name__}: {error}); "
              f"the table is safe in {folder}", file=sys.stderr, flush=True)


def _log_summary_run(cfg: DictConfig, folder: Path, summary: pd.DataFrame | SummaryPieces, statuses: pd.Series,
                     table: pd.DataFrame | None, n_rows: int | None) -> None:
    """``_log_sweep``'s run: statistics, figures and tables of the table held, or of the streamed summary."""
    from xaibench.report.build import analyse, rank_statistics
    from xaibench.report.figure_set import analysed_figures, cost_metric, scored_rows
    from xaibench.report.streamed_figures import iter_streamed_figures
    from xaibench.report.wandb_sink import log_sweep
    from xaibench.results.memory import release_memory

    release_memory()  # what the summary's end and printing freed, before the run's own phases
    if table is None:  # summary: SummaryPieces; the statistics and the figures get the columns they read
        stats = summary.frame([*COMPARISON_COLUMNS, *_STATISTICS_COLUMNS])
        ranks, friedman, agreement = rank_statistics(stats)
        metric = cost_metric(stats)  # every summary row's metric and family, as the drawn columns would give
        del stats
        release_memory()  # the statistics' intermediate frames, before the tables and figures

        def drawn() -> pd.DataFrame:  # what every figure draws; made once, after the pass over the table's ranges,
            # and let go before the explanation figures (iter_streamed_figures; the figures copy no rows of it)
            return scored_rows(summary.frame([c for c in summary.columns if c not in _NOT_DRAWN]))

        figures = iter_streamed_figures(folder / TABLE_NAME, drawn, str(cfg.store_dir), friedman=friedman,
                                        ranks=ranks[ranks["by"] == "metric"] if "by" in ranks else None,
                                        agreement=agreement, cost_metric=metric)  # drawn, logged, freed one at a time
        log_sweep(folder, None, summary, cfg, figures, ranks, cells=statuses, n_rows=n_rows)
    else:
        analysis = analyse(table)
        log_sweep(folder, table, summary, cfg, analysed_figures(table, analysis, str(cfg.store_dir)),
                  analysis.ranks, cells=statuses)


# The summary columns the W&B run's rank statistics read (with the comparison-group columns it has), and those its
# figures do not read: a streamed sweep's run holds only the others (the summary of 10,000 cells is 120,000 rows,
# 40 MB whole, and each figure pass held its own copy of the scored rows).
_STATISTICS_COLUMNS = ("setting", "comparison", "competitor", "method", "family", "higher_is_better", "mean")
_NOT_DRAWN = frozenset({"setting", "comparison", "n_seeds", "std", "n", "n_values", "nan_rate", "error_rate", "status",
                        "message", "model_accuracy", "model_flag"})
