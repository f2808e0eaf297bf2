"""``xaibench --help`` and ``--version`` explain the CLI; sweeps are quiet unless verbose; cell lines say what ran."""
from __future__ import annotations

import importlib

import pytest

from tests.conftest import FAST_METRICS, run_cli
from xaibench import __version__
from xaibench.cli import VERBS
from xaibench.config.paths import GROUPS, group_options


def test_help_lists_verbs_groups_and_options(tmp_path):
    done = run_cli(["--help"], tmp_path, timeout=60)
    assert done.returncode == 0, done.stderr
    for verb, module in VERBS.items():
        first_line = importlib.import_module(module).DESCRIPTION.strip().splitlines()[0]
        assert f"  {verb}" in done.stdout and first_line.split()[0] in done.stdout
    for group in GROUPS:
        assert f"  {group}:" in done.stdout
    assert "integrated_gradients" in done.stdout and "csv_table" in done.stdout
    assert "dataset.label" in done.stdout and "--multirun" in done.stdout
    assert "launchers (-m hydra/launcher=NAME; logs, progress and failures on a cluster: docs/cluster.md): basic " \
           "(the default: in this process), joblib (hydra.launcher.n_jobs=N), ray, ray_cpu, slurm, slurm_cpu, " \
           "submitit_local_chunked examples:" in " ".join(done.stdout.split())  # a cluster user found no launcher


def test_version_prints_the_package_version(tmp_path):
    done = run_cli(["--version"], tmp_path, timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == f"xaibench {__version__}"


@pytest.mark.slow
def test_sweep_is_quiet_and_cell_lines_say_what_was_computed(tmp_path):
    args = ["-m", "model=logreg", "dataset=iris", "method=saliency", "n_samples=4", "model.label=Linear",
            "metrics=default", *FAST_METRICS]
    first = run_cli([*args, "~metrics.max_sensitivity", "verbose=true"], tmp_path)
    assert first.returncode == 0, first.stderr
    assert "#0 :" in first.stdout + first.stderr  # Hydra's launch lines with verbose=true
    assert "Linear x iris x saliency" in first.stdout and "computed 2 new metrics" in first.stdout
    second = run_cli(args, tmp_path)
    assert "#0 :" not in second.stdout + second.stderr and "Launching" not in second.stdout + second.stderr
    assert "computed 1 new metric, 2 cached" in second.stdout, second.stdout
    # what ran and what the cell holds, apart: it read "computed 1 new metric, 2 cached 3 metrics x 4 samples"
    assert "computed 1 new metric, 2 cached; 3 metrics x 4 samples" in second.stdout, second.stdout
    assert "computed 2 new metrics; 2 metrics x 4 samples" in first.stdout, first.stdout


def test_report_help_says_it_draws_figures_and_where_their_maps_come_from(capsys):
    """review24: ``xaibench report --help`` said it writes "the tables and statistics" and "reads the table only",
    while it also draws 6 figures for the quickstart, galleries from the store's attributions (``--store``)."""
    from xaibench.cli import main

    with pytest.raises(SystemExit) as done:
        main(["report", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert done.value.code == 0
    assert ("Write the tables, statistics and figures of a results table (Markdown, LaTeX booktabs, self-contained "
            "HTML, CSV; figures as PNG and PDF). Reads the table (and, for the attribution galleries, the stored "
            "explanations); never recomputes a score.") in text
