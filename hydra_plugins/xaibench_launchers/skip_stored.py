"""Hydra's basic sweeper, launching only the jobs whose cells the store does not hold.

Before Hydra starts, the CLI reads every stored cell of the sweep in its own process (``sweep.launch_pending``:
store reads only, no torch, no worker) and tells this sweeper which job numbers are left
(``sweep.pending_jobs``). The sweeper expands the sweep exactly as ``BasicSweeper`` does, checks that it finds
the pre-flight's number of jobs, and hands the launcher (joblib, submitit, Ray) only the pending ones, each with
its own ``jobs/<n>`` folder (``hydra.sweep.subdir``, when the subdir is the suite's ``jobs/${hydra.job.num}``),
so that job numbers and folders are those of a run that launched everything. Hydra's own check that every job
composes (``validate_batch_is_legal``, a composition per job) is skipped: the pre-flight composed them all.
Selected by the CLI (``hydra.sweeper._target_``) only where the sweep uses the basic sweeper.
"""

import logging
from pathlib import Path
from typing import Any, List, Sequence

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

log = logging.getLogger(__name__)
SUITE_SUBDIR = "jobs/${hydra.job.num}"  # conf/config.yaml's hydra.sweep.subdir


class SkipStoredSweeper(BasicSweeper):
    """``BasicSweeper`` whose launcher gets only the jobs ``xaibench.sweep.pending_jobs()`` lists."""

    def sweep(self, arguments: List[str]) -> Any:
        from xaibench import sweep as xaibench_sweep

        assert self.config is not None and self.launcher is not None and self.hydra_context is not None
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        batches = self.split_arguments(parser.parse_overrides([*self._parse_config(), *arguments]), None)
        jobs = [list(job) for batch in batches for job in batch]
        pending = xaibench_sweep.pending_jobs(len(jobs))  # job numbers to launch, in order
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")  # as BasicSweeper
        own_folders = OmegaConf.to_container(self.config.hydra.sweep, resolve=False).get("subdir") == SUITE_SUBDIR
        selected = [[*jobs[n], f"hydra.sweep.subdir=jobs/{n}"] if own_folders else jobs[n] for n in pending]
        log.debug(f"launching {len(selected)} of {len(jobs)} jobs; the others' cells are stored")
        size = self.max_batch_size or len(selected) or 1
        returns: List[Sequence[Any]] = []
        try:
            for start in range(0, len(selected), size):
                results = self.launcher.launch(selected[start:start + size], initial_job_idx=start)
                for result in results:
                    _ = result.return_value  # raises if the job failed, as BasicSweeper does
                returns.append(results)
        finally:
            remove_unfilled_folder(OmegaConf.select(self.config, "hydra.launcher.submitit_folder"))
        return returns


ID_TAGS = ("%j", "%t", "%A", "%a")  # submitit's placeholders for the job id, task, array id and index


def remove_unfilled_folder(submitit_folder: Any) -> None:
    """Remove the empty folder named literally ``%j`` that submitit's local executor leaves (``<sweep>/.submitit/%j/``
    beside the tasks' ``<sweep>/.submitit/<pid>/``): each task's controller creates its ``submitit_folder`` before
    filling in ``%j``. Also where the tasks of an earlier, killed run created it (a rerun whose cells are all
    stored launches nothing). Nothing else is touched: a folder holding anything stays."""
    if not submitit_folder:
        return
    parts = Path(str(submitit_folder)).parts
    tagged = [i for i, part in enumerate(parts) if any(tag in part for tag in ID_TAGS)]
    if tagged:
        try:
            Path(*parts[:tagged[0] + 1]).rmdir()  # only when empty
        except OSError:
            pass
