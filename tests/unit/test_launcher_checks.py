"""Launcher choices and settings that cannot work are refused by the pre-flight, before any file is touched.

Each case was accepted before and failed later: a traceback after the sweep folder was claimed (a sweep over
launchers, a non-numeric Ray resource), a silent fallback (``cells_per_task=0`` ran as 1), a misleading list of
options (a misspelt launcher: "valid: basic"), or GPUs held idle for the whole sweep (the Slurm GPU preset with
the default ``device=cpu``).
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import run_cli
from xaibench.config.preflight import validate
from xaibench.errors import UserError

CELLS = ["model=logreg", "dataset=iris", "method=saliency,random", "n_samples=4", "metrics=sparsity"]
FAKE_SLURM = Path(__file__).parents[1] / "integration" / "fake_slurm"


def fake_slurm_path() -> str:
    """``$PATH`` with the fake ``sbatch``/``squeue``/``sacct``/``scontrol`` first."""
    return f"{FAKE_SLURM}{os.pathsep}{os.environ['PATH']}"


def console(argv: list[str], cwd: Path, monkeypatch, capfd, **env: str) -> tuple[int, str]:
    """``xaibench ARGV`` through the console entry in this process, in ``cwd`` with ``env`` set (a subprocess cost
    ~6 CPU-s of imports to print the same line): (exit code, stderr)."""
    from xaibench.cli import main
    from xaibench.config.slurm import max_array_size

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(cwd)
    max_array_size.cache_clear()  # scontrol's answer is cached per process
    capfd.readouterr()
    try:
        with pytest.raises(SystemExit) as done:
            main(argv)
    finally:
        max_array_size.cache_clear()
    return done.value.code, capfd.readouterr().err


@pytest.mark.parametrize(("overrides", "refusal"), [
    (["hydra/launcher=joblib,ray"], "hydra/launcher=joblib,ray sweeps over Hydra's own settings"),
    (["hydra/launcher=joblib", "hydra.launcher.n_jobs=1,2"], "hydra.launcher.n_jobs=1,2 sweeps over Hydra's own"),
    (["hydra/launcher=joblib", "hydra.launcher.n_jobs=0"],  # claimed the sweep folder, then joblib's traceback
     "hydra.launcher.n_jobs must be a non-zero integer (N worker processes; -1: one per CPU core, -2: all but one), "
     "got 0"),
    (["hydra/launcher=jolib"], "unknown hydra/launcher 'jolib'; did you mean 'joblib'? valid: basic, joblib, ray, "
                               "ray_cpu, slurm, slurm_cpu, submitit_local, "),
    (["hydra/launcher=submitit_slrum"],  # was "did you mean 'submitit_slurm'?", a launcher refused next
     "unknown hydra/launcher 'submitit_slrum'; did you mean 'submitit_slurm_chunked'? valid: basic, joblib, ray, "
     "ray_cpu, slurm, slurm_cpu, submitit_local, submitit_local_chunked, submitit_slurm_chunked, "),
    (["hydra/sweeper=optuna"], "unknown hydra/sweeper 'optuna'"),
    (["hydra/launcher=ray_cpu", "hydra.launcher.remote.num_gpus=foo"],
     "hydra.launcher.remote.num_gpus must be a non-negative number (0.5: two jobs per GPU) or null, got 'foo'"),
    (["hydra/launcher=ray_cpu", "hydra.launcher.init.num_gpus=1.5"],
     "hydra.launcher.init.num_gpus must be a non-negative integer or null, got 1.5"),
    (["hydra/launcher=ray_cpu", "hydra.launcher.remote.num_cpus=-1"], "remote.num_cpus must be a non-negative"),
    (["hydra/launcher=submitit_local_chunked", "hydra.launcher.cells_per_task=0"],
     "hydra.launcher.cells_per_task must be a positive integer"),
    (["hydra/launcher=slurm_cpu", "hydra.launcher.max_num_timeout=-1"],  # read as "requeued again after -1"
     "hydra.launcher.max_num_timeout must be a non-negative integer"),
    (["hydra/launcher=slurm_cpu", "+hydra.launcher.partitio=gpu"],  # submitit refused it with a traceback, late
     "hydra.launcher.partitio is not a setting of the slurm launcher; did you mean 'partition'? (other sbatch "
     "options go in hydra.launcher.additional_parameters)"),
    (["hydra/launcher=submitit_local_chunked", "+hydra.launcher.cells_per_tasks=2"],
     "hydra.launcher.cells_per_tasks is not a setting of the local launcher; did you mean 'cells_per_task'?"),
    (["hydra/launcher=slurm"], "the Slurm launcher asks GPUs for each task but device=cpu computes on the CPU"),
    (["hydra/launcher=slurm", "device=cpu:1"], "asks GPUs for each task but device=cpu:1"),
    (["hydra/launcher=slurm", "device=auto", "hydra.launcher.gpus_per_task=2"],  # cells run one at a time on one
     "hydra.launcher.gpus_per_task=2 but a task runs its cells one after the other, each on one device, leaving 1 "
     "of its GPUs idle; use hydra.launcher.gpus_per_task=1"),
    (["hydra/launcher=submitit_slurm_chunked", "hydra.launcher.gres=gpu:1"], "asks GPUs for each task but device=cpu"),
    # other sbatch options, as the launcher's hint says: was "did you mean 'hydra.launcher.additional_parameters'?"
    (["hydra/launcher=slurm_cpu", "hydra.launcher.additional_parameters={reservation:maint}"],
     "hydra.launcher.additional_parameters has no key 'reservation' yet; add keys to it with a '+': "
     "+hydra.launcher.additional_parameters={reservation:maint} (merged with its keys: requeue)"),
    (["hydra/launcher=slurm_cpu", "hydra.launcher.additional_parameters.reservation=maint"],
     "unknown config key 'hydra.launcher.additional_parameters.reservation'; hydra.launcher.additional_parameters "
     "has: requeue; add a key with a '+': +hydra.launcher.additional_parameters.reservation=<value>"),
    # impossible counts: sbatch refused them once the stored cells were written; the local executor ran them
    (["hydra/launcher=slurm", "device=auto", "hydra.launcher.gpus_per_task=-1"],
     "hydra.launcher.gpus_per_task must be a positive integer (GPUs per task; null: none, or "
     "hydra/launcher=slurm_cpu), got -1"),
    (["hydra/launcher=slurm_cpu", "hydra.launcher.timeout_min=0"],
     "hydra.launcher.timeout_min must be a positive integer (minutes of wall-clock time per task), got 0"),
    (["hydra/launcher=slurm_cpu", "hydra.launcher.mem_gb=-1"], "hydra.launcher.mem_gb must be a positive integer"),
    (["hydra/launcher=slurm_cpu", "hydra.launcher.array_parallelism=0"],
     "hydra.launcher.array_parallelism must be a positive integer (array tasks running at once), got 0"),
    (["hydra/launcher=submitit_local_chunked", "hydra.launcher.gpus_per_node=-1"],
     "hydra.launcher.gpus_per_node must be a positive integer"),
    # Slurm signals USR2 signal_delay_s before the limit: at once here, and every task stopped in its first cell
    (["hydra/launcher=slurm_cpu", "hydra.launcher.timeout_min=2"],
     "hydra.launcher.signal_delay_s=120 must be at least 0 and below the task's time limit (timeout_min=2: 120 s)"),
    (["hydra/launcher=submitit_slurm"],  # it ran, without recording its array: a rerun could collect its cells
     "does not record its Slurm array in the sweep folder, so a rerun could mix that array's cells with its own, and a "
     "task that dies or is preempted loses its cells; use hydra/launcher=submitit_slurm_chunked with the same "
     "hydra.launcher.* settings (cells_per_task=1 is one cell per task, as submitit_slurm)"),
    # values a launcher ignores or its library refuses only once the sweep folder is claimed (or when jobs run)
    (["hydra/launcher=joblib", "hydra.launcher.backend=bogus"],  # ran: Hydra's joblib launcher always uses loky
     "hydra.launcher.backend=bogus is not used: Hydra's joblib launcher always runs its jobs in loky worker "
     "processes (threads cannot run Hydra jobs); leave it out, or set hydra.launcher.backend=loky"),
    (["hydra/launcher=joblib", "hydra.launcher.prefer=threads"], "hydra.launcher.prefer=threads is not used"),
    (["hydra/launcher=joblib", "hydra.launcher.require=sharedmem"], "hydra.launcher.require=sharedmem cannot be met"),
    (["hydra/launcher=joblib", "hydra.launcher.batch_size=0"],  # joblib's traceback after the claim
     "hydra.launcher.batch_size=0 is refused by joblib: batch_size must be 'auto' or a positive integer"),
    (["hydra/launcher=joblib", "hydra.launcher.max_nbytes=lots"], "hydra.launcher.max_nbytes=lots is refused"),
    (["hydra/launcher=joblib", "hydra.launcher.pre_dispatch=n_job"], "hydra.launcher.pre_dispatch must be 'all'"),
    (["hydra/launcher=joblib", "hydra.launcher.timeout=-1"],  # every job a TimeoutError
     "hydra.launcher.timeout must be a positive number of seconds per job or null (no limit), got -1.0"),
    (["hydra/launcher=joblib", "hydra.launcher.mmap_mode=rw"], "hydra.launcher.mmap_mode must be one of r, r+, w+"),
    (["hydra/launcher=ray_cpu", "hydra.launcher.device=bogus"],  # every job ran on "bogus", each refused
     "hydra.launcher.device='bogus' must name each job's device from the GPU Ray assigned, as cuda:{gpu}"),
    (["hydra/launcher=ray_cpu", "hydra.launcher.init.address=bogus"], "hydra.launcher.init.address must be local"),
    (["hydra/launcher=ray_cpu", "+hydra.launcher.init.num_gpu=1"], "hydra.launcher.init.num_gpu is not an option"),
    (["hydra/launcher=ray_cpu", "+hydra.launcher.remote.gpus=1"],
     "hydra.launcher.remote: Invalid option keyword gpus for remote functions"),
    (["hydra/launcher=ray_cpu", "hydra.launcher.remote.max_calls=-1"], "'max_calls' only accepts None, 0 or a"),
    (["hydra/launcher=submitit_local_chunked", "hydra.launcher.tasks_per_node=2"],  # each process ran every cell
     "hydra.launcher.tasks_per_node=2 would run each task's cells in 2 processes at once, every one computing them "
     "all"),
    (["hydra/launcher=slurm_cpu", "hydra.launcher.nodes=2"], "hydra.launcher.nodes=2 would run each task's cells"),
])
def test_a_launcher_that_cannot_work_is_refused_by_the_preflight(overrides, refusal, monkeypatch):
    monkeypatch.setenv("PATH", fake_slurm_path())  # sbatch found: the settings count
    with pytest.raises(UserError) as refused:
        validate([*CELLS, *overrides], multirun=True)
    assert refusal in str(refused.value)


def test_the_stock_slurm_launcher_is_refused_for_itself_also_where_sbatch_is_missing(monkeypatch):
    """On a laptop it said "sbatch is not on PATH ... run from a Slurm login node", where it was then refused."""
    monkeypatch.setattr("xaibench.config.preflight.launchers.shutil.which", lambda name: None)
    with pytest.raises(UserError, match="use hydra/launcher=submitit_slurm_chunked"):
        validate([*CELLS, "hydra/launcher=submitit_slurm"], multirun=True)


def test_other_sbatch_options_add_to_the_presets_requeue(monkeypatch):
    """``+hydra.launcher.additional_parameters.reservation=maint``: sbatch gets both (the preset's --requeue kept)."""
    from xaibench.config.preflight import launch_of

    monkeypatch.setenv("PATH", fake_slurm_path())
    for added in ("+hydra.launcher.additional_parameters.reservation=maint",
                  "+hydra.launcher.additional_parameters={reservation:maint}"):
        launch = launch_of([*CELLS, "hydra/launcher=slurm_cpu", added])
        assert launch.settings["additional_parameters"] == {"requeue": True, "reservation": "maint"}


def test_a_preset_switch_turned_off_is_left_out_of_the_sbatch_script(tmp_path, monkeypatch):
    """``hydra.launcher.additional_parameters.requeue=false`` (the presets ask --requeue) became
    ``#SBATCH --requeue=False``, which sbatch refuses; now ``--no-requeue``, and other false switches are left out."""
    from hydra_plugins.xaibench_launchers.chunked_submitit import ChunkedSlurmLauncher

    monkeypatch.setenv("PATH", fake_slurm_path())  # submitit looks for srun
    switches = {"requeue": False, "exclusive": False, "reservation": "maint", "overcommit": True}
    launcher = ChunkedSlurmLauncher(cells_per_task=2, submitit_folder=str(tmp_path / "%j"), timeout_min=5,
                                    additional_parameters=switches)
    script = launcher._executor()._executor._make_submission_file_text("true", "uid")  # what sbatch gets
    assert "#SBATCH --no-requeue\n" in script and "#SBATCH --reservation=maint\n" in script
    assert "#SBATCH --overcommit\n" in script and "False" not in script and "exclusive" not in script


@pytest.mark.parametrize("overrides", [["hydra/launcher=slurm", "device=auto"],
                                       ["hydra/launcher=slurm", "hydra.launcher.gpus_per_task=null"],
                                       ["hydra/launcher=slurm_cpu"]])
def test_gpus_asked_for_jobs_that_use_them_or_none_asked_pass(overrides, monkeypatch):
    monkeypatch.setenv("PATH", fake_slurm_path())
    monkeypatch.setattr("xaibench.config.preflight.validate_config", lambda cfg, **kwargs: None)  # data: elsewhere
    assert len(validate([*CELLS, *overrides], multirun=True)) == 2


@pytest.mark.parametrize("launcher", [["hydra/launcher=joblib,submitit_local"],
                                      ["hydra/launcher=joblib", "hydra.launcher.backend=bogus"]])
def test_a_sweep_over_launchers_exits_2_with_one_line_and_touches_nothing(launcher, tmp_path):
    """It used to pass the pre-flight, claim the sweep folder, then die in Hydra with a traceback (exit 1); a
    joblib ``backend`` other than loky ran (Hydra's launcher replaces it)."""
    done = run_cli(["-m", *CELLS, *launcher], tmp_path, timeout=120)
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("xaibench: error: ")
    assert list(tmp_path.iterdir()) == []


def test_a_sweep_over_the_scoring_engine_is_refused():
    """``engine=fast,quantus`` computed both and collect kept one engine's rows: no column tells them apart."""
    with pytest.raises(UserError) as refused:
        validate([*CELLS, "engine=fast,quantus"], multirun=True)
    assert "engine=fast,quantus sweeps over the scoring engine" in str(refused.value)


def test_an_array_above_max_array_size_is_refused_before_any_file_is_touched(tmp_path, monkeypatch, capfd):
    """Slurm's MaxArraySize (``scontrol show config``, faked at 2): 3 cells at one per task were submitted once the
    stored cells were written, and sbatch refused them there; now the pre-flight names the cells_per_task that fits."""
    fake = {"PATH": fake_slurm_path(), "FAKE_SLURM_DIR": str(tmp_path / "slurm"),
            "FAKE_SLURM_MAX_ARRAY_SIZE": "2"}
    code, stderr = console(["-m", *CELLS, "method=saliency,random,integrated_gradients", "hydra/launcher=slurm_cpu",
                            "hydra.launcher.cells_per_task=1"], tmp_path, monkeypatch, capfd, **fake)
    assert code == 2, stderr[-2000:]
    assert stderr == ("xaibench: error: 3 cells to compute at cells_per_task=1 are 3 Slurm array tasks, more than "
                      "this cluster's MaxArraySize=2 (scontrol show config); set hydra.launcher.cells_per_task=2 "
                      "or more, and raise hydra.launcher.timeout_min for 2 cells a task (now 60 minutes for 1)\n")
    assert list(tmp_path.iterdir()) == []  # not even the fake Slurm's state: nothing was submitted


def test_the_array_size_counts_only_the_cells_the_store_lacks(tmp_path, monkeypatch):
    """Stored cells are written by the launching process, not submitted: a rerun of a large sweep that lacks a few
    cells fits in MaxArraySize and is not refused."""
    from xaibench.config.plan import make_plan
    from xaibench.config.preflight import check_array_size
    from xaibench.config.slurm import max_array_size
    from xaibench.engine.cell import CellSpec
    from xaibench.engine.store import Store

    monkeypatch.setenv("PATH", fake_slurm_path())
    monkeypatch.setenv("FAKE_SLURM_MAX_ARRAY_SIZE", "2")
    monkeypatch.setattr("xaibench.config.preflight.validate_config", lambda cfg, **kwargs: None)
    max_array_size.cache_clear()
    plan = make_plan([*CELLS, "method=saliency,random,integrated_gradients", f"store_dir={tmp_path}",
                      "hydra/launcher=slurm_cpu", "hydra.launcher.cells_per_task=1"], multirun=True)
    with pytest.raises(UserError, match="3 cells to compute at cells_per_task=1 are 3 Slurm array tasks"):
        check_array_size(plan.launch, plan.configs)
    stored = Store(tmp_path).path("cells", CellSpec.from_config(plan.configs[0]).key, "parquet")
    stored.parent.mkdir(parents=True)
    stored.write_bytes(b"")  # the store holds the first cell: 2 to compute, 2 tasks
    check_array_size(plan.launch, plan.configs)
    max_array_size.cache_clear()


def test_an_array_sbatch_would_refuse_is_refused_before_any_file_is_touched(tmp_path, monkeypatch, capfd):
    """``sbatch --test-only`` (faked: partitions cpu, gpu and no default) validates the array before anything is
    written: a cluster without a default partition and the preset's ``partition: null``, or a misspelt partition,
    were refused by sbatch only after the sweep folder was claimed (sweep.json left "running", submitit's pickle
    and script in it)."""
    fake = {"PATH": fake_slurm_path(), "FAKE_SLURM_DIR": str(tmp_path / "slurm"),
            "FAKE_SLURM_PARTITIONS": "cpu,gpu"}
    code, stderr = console(["-m", *CELLS, "hydra/launcher=slurm_cpu", "hydra.launcher.partition=gpux",
                            "hydra.launcher.cells_per_task=1"], tmp_path, monkeypatch, capfd, **fake)
    assert code == 2, stderr[-2000:]
    assert stderr == ("xaibench: error: slurm refuses the sweep's array job (2 tasks; sbatch --test-only): "
                      "sbatch: error: invalid partition specified: gpux sbatch: error: Batch job submission "
                      "failed: Invalid partition name specified; fix the hydra.launcher.* settings (partition, "
                      "account, timeout_min, mem_gb, cells_per_task) and rerun\n")
    assert list(tmp_path.iterdir()) == []
    code, stderr = console(["-m", *CELLS, "hydra/launcher=slurm_cpu"], tmp_path, monkeypatch, capfd, **fake)
    assert code == 2 and "No partition specified or system default partition" in stderr
    assert list(tmp_path.iterdir()) == []


def test_the_test_only_script_is_the_array_the_launcher_submits(monkeypatch):
    """The pre-flight validates the same #SBATCH lines the launcher submits (partition, time, memory, GPUs, array)."""
    from hydra_plugins.xaibench_launchers.chunked_submitit import ChunkedSlurmLauncher
    from xaibench.config.preflight import launch_of

    monkeypatch.setenv("PATH", fake_slurm_path())  # submitit looks for srun
    settings = launch_of([*CELLS, "hydra/launcher=slurm", "hydra.launcher.partition=gpu"]).settings
    script = ChunkedSlurmLauncher.sbatch_script(settings, 7)
    for line in ("--partition=gpu", "--time=120", "--mem=32GB", "--gpus-per-task=1", "--cpus-per-task=4",
                 "--array=0-6%7", "--requeue", "--signal=USR2@120", "--job-name=xaibench"):
        assert f"#SBATCH {line}\n" in script, line
    assert "--array" not in ChunkedSlurmLauncher.sbatch_script(settings, 1)  # one task: a plain job, as submitted


BLOCK_SUBMITIT = '''
import sys

class _NotInstalled:  # as after `pip install xaibench` without the launchers extra
    def find_spec(self, name, path=None, target=None):
        if name.startswith(("hydra_plugins.hydra_submitit_launcher", "hydra_plugins.hydra_joblib_launcher")):
            raise ModuleNotFoundError(f"No module named {name!r}")

sys.meta_path.insert(0, _NotInstalled())
'''


def test_without_the_launchers_extra_sweeps_run_quietly_and_its_launchers_say_what_to_install(tmp_path):
    """Without hydra-submitit-launcher (``pip install xaibench``: it is in the ``launchers`` extra), Hydra's plugin
    scan printed, on every run, a 5-line warning calling xaibench's own launcher plugin "incompatible ... or buggy";
    and ``hydra/launcher=slurm`` said "Could not load 'hydra/launcher/submitit_slurm_chunked'"."""
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(BLOCK_SUBMITIT)
    path = f"{tmp_path / 'site'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"
    scan = subprocess.run([sys.executable, "-W", "error", "-c", "from hydra.core.plugins import Plugins; "
                           "Plugins.instance(); import hydra_plugins.xaibench_launchers.chunked_submitit"],
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": path}, timeout=120)
    assert scan.returncode == 0 and scan.stderr == "", scan.stderr[-2000:]
    work = tmp_path / "work"
    work.mkdir()
    for launcher, package in (("slurm_cpu", "hydra-submitit-launcher"), ("joblib", "hydra-joblib-launcher")):
        done = run_cli(["-m", *CELLS, f"hydra/launcher={launcher}"], work, timeout=120, PYTHONPATH=path,
                       PATH=fake_slurm_path())
        assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr[-2000:]
        assert done.stderr.startswith("xaibench: error: ") and done.stderr.endswith(  # by name or, from a cached
            f" needs {package}, which is not installed: pip install 'xaibench[launchers]'\n")  # plan, by class
    assert list(work.iterdir()) == []


def test_a_rerun_whose_cells_are_all_stored_needs_no_slurm_answer(tmp_path, monkeypatch):
    """``sbatch --test-only`` refusing the array stops a sweep with cells to compute, not a rerun that only writes
    its stored cells (nothing is submitted: a retired partition does not keep a finished sweep from its table)."""
    from xaibench.config.plan import make_plan
    from xaibench.config.preflight import check_array_size
    from xaibench.engine.cell import CellSpec
    from xaibench.engine.store import Store

    monkeypatch.setenv("PATH", fake_slurm_path())
    monkeypatch.setenv("FAKE_SLURM_PARTITIONS", "cpu,gpu")  # no default partition; the preset names none
    monkeypatch.setattr("xaibench.config.preflight.validate_config", lambda cfg, **kwargs: None)
    plan = make_plan([*CELLS, f"store_dir={tmp_path}", "hydra/launcher=slurm_cpu"], multirun=True)
    stored = [Store(tmp_path).path("cells", CellSpec.from_config(cfg).key, "parquet") for cfg in plan.configs]
    for path in stored:
        path.parent.mkdir(parents=True, exist_ok=True)
    stored[0].write_bytes(b"")  # one of the two cells stored: the other is submitted
    with pytest.raises(UserError, match="No partition specified or system default partition"):
        check_array_size(plan.launch, plan.configs)
    stored[1].write_bytes(b"")
    check_array_size(plan.launch, plan.configs)


def test_an_experiment_file_edited_in_the_process_gives_its_new_launcher(tmp_path):
    """``launch_of`` kept its own once-per-process cache keyed on the command line alone: after an experiment file
    of the user's was edited in a notebook, the sweep was still checked and launched with the old launcher settings
    (the composition below it is keyed on the config files: ``composition.hydra_config``)."""
    import os

    from xaibench.config.preflight import launch_of

    experiment = tmp_path / "conf" / "experiment" / "mine.yaml"
    experiment.parent.mkdir(parents=True)
    text = "# @package _global_\ndefaults:\n  - override /hydra/launcher: joblib\nhydra:\n  launcher:\n    n_jobs: {}\n"
    experiment.write_text(text.format(2))
    overrides = [*CELLS, f"hydra.searchpath=[file://{tmp_path / 'conf'}]", "experiment=mine"]
    assert launch_of(overrides).settings["n_jobs"] == 2
    experiment.write_text(text.format(3))
    stat = experiment.stat()
    os.utime(experiment, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # a later edit, whatever the clock's grain
    assert launch_of(overrides).settings["n_jobs"] == 3
