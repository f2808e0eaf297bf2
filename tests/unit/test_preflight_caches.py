"""The pre-flight's caches see every edit and environment change they depend on (rel24).

Real Hydra compositions, real CLI and API calls, configs in temp folders: a process composes the sweep's Hydra
config once per key (``composition.hydra_config``, ``_known_keys``) and the CLI keeps each sweep's plan on disk
(``plan.make_plan``); each test changes one thing the cached answer depended on and shows the new answer is used.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

import xaibench
from xaibench.cli import main
from xaibench.config.paths import conf_dir
from xaibench.config.preflight import hydra_config, validate
from xaibench.errors import UserError

BASE = ["model=mlp", "dataset=iris", "method=saliency", "n_samples=4"]
VAR = "XAIBENCH_TEST_REL24_VARIABLE"  # set and unset by these tests only


def _write(path: Path, text: str) -> None:
    """Write ``text``, with an mtime that differs from the file's previous one even on a coarse clock."""
    before = path.stat().st_mtime_ns if path.exists() else 0
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.utime(path, ns=(before + 10**9, before + 10**9))


@pytest.fixture
def here(tmp_path, monkeypatch) -> Path:
    """cwd = a temp folder with its own plan cache; the test variable unset."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("XAIBENCH_STORE", raising=False)
    monkeypatch.delenv("XAIBENCH_NO_PLAN_CACHE", raising=False)
    monkeypatch.setenv("XAIBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv(VAR, raising=False)
    return tmp_path


@pytest.fixture
def own_conf(here, monkeypatch) -> Path:
    """A copy of xaibench's configs in the temp folder, used as them (``$XAIBENCH_CONF_DIR``)."""
    copy = here / "conf"
    shutil.copytree(conf_dir(), copy)
    monkeypatch.setenv("XAIBENCH_CONF_DIR", str(copy))
    return copy


def _exit_code(argv: list[str], capfd) -> tuple[int, str]:
    capfd.readouterr()
    with pytest.raises(SystemExit) as done:
        main(argv)
    return done.value.code, capfd.readouterr().err


def test_a_pkg_searchpath_experiment_edited_within_the_process_is_composed_again(here, monkeypatch):
    """The sweep of an experiment in the user's installed package of configs (``pkg://``) is expanded from the
    Hydra config composed in the process, which was remembered under xaibench's and ``file://`` folders' files
    only: after an edit, it still said 2 seeds. (And ``xaibench.run`` refused the package's experiment as
    unknown: the group check listed ``file://`` folders only.)"""
    package = here / "site" / "mycfgs"
    _write(package / "__init__.py", "")
    experiment = package / "experiment" / "seeds.yaml"
    _write(experiment, "# @package _global_\nhydra:\n  sweeper:\n    params:\n      seed: 0,1\n")
    monkeypatch.syspath_prepend(str(here / "site"))
    overrides = [*BASE, "hydra.searchpath=[pkg://mycfgs]", "experiment=seeds"]
    assert hydra_config(overrides).hydra.sweeper.params.seed == "0,1"
    _write(experiment, "# @package _global_\nhydra:\n  sweeper:\n    params:\n      seed: 0,1,2\n")
    assert hydra_config(overrides).hydra.sweeper.params.seed == "0,1,2"
    assert sorted(set(xaibench.run(overrides, multirun=True)["seed"])) == [0, 1, 2]  # its group option is known


def test_a_pkg_config_folder_without_init_py_is_searched_and_followed(here, monkeypatch):
    """``pkg://rev24b_cfgs.conf`` where ``conf/`` holds YAML files only (no ``__init__.py``: a namespace package,
    which Hydra reads): the pre-flight refused its experiment as unknown, and the remembered composition did not
    see its edits (rev24b)."""
    _write(here / "site" / "rev24b_cfgs" / "__init__.py", "")
    experiment = here / "site" / "rev24b_cfgs" / "conf" / "experiment" / "five.yaml"
    _write(experiment, "# @package _global_\nn_samples: 5\n")
    monkeypatch.syspath_prepend(str(here / "site"))
    overrides = [*BASE[:3], "hydra.searchpath=[pkg://rev24b_cfgs.conf]", "experiment=five"]
    assert validate(overrides, multirun=False)[0].n_samples == 5
    _write(experiment, "# @package _global_\nn_samples: 6\nhydra:\n  sweeper:\n    params:\n      seed: 0,1\n")
    assert hydra_config(overrides).hydra.sweeper.params.seed == "0,1"


def test_a_searchpath_folder_with_a_space_edited_within_the_process_is_composed_again(here):
    """The remembered Hydra config was keyed on the files of ``file:///.../my confs`` cut at the space (``/.../my``,
    no such folder): an edit of its experiment within the process still expanded the old sweep (rev24b)."""
    experiment = here / "my confs" / "experiment" / "seeds.yaml"
    _write(experiment, "# @package _global_\nhydra:\n  sweeper:\n    params:\n      seed: 0,1\n")
    overrides = [*BASE, f"hydra.searchpath=['file://{here / 'my confs'}']", "experiment=seeds"]
    assert hydra_config(overrides).hydra.sweeper.params.seed == "0,1"
    _write(experiment, "# @package _global_\nhydra:\n  sweeper:\n    params:\n      seed: 0,1,2\n")
    assert hydra_config(overrides).hydra.sweeper.params.seed == "0,1,2"


def test_the_hydra_config_follows_the_variables_its_env_copy_reads(here, monkeypatch):
    """``hydra.job.env_copy`` copies the variable's value into ``hydra.job.env_set`` when composing: the config
    remembered in the process kept the first value, and served a variable unset since without Hydra's refusal."""
    folder = here / "myconf"
    _write(folder / "experiment" / "copy.yaml", f"# @package _global_\nhydra:\n  job:\n    env_copy: [{VAR}]\n")
    overrides = [*BASE, f"hydra.searchpath=[file://{folder}]", "experiment=copy"]
    monkeypatch.setenv(VAR, "first")
    assert hydra_config(overrides).hydra.job.env_set[VAR] == "first"
    monkeypatch.setenv(VAR, "second")
    assert hydra_config(overrides).hydra.job.env_set[VAR] == "second"
    monkeypatch.delenv(VAR)
    with pytest.raises(UserError, match=f"hydra.job.env_copy names the environment variable '{VAR}', which is not"):
        hydra_config(overrides)


def test_a_key_added_to_config_yaml_within_the_process_is_known(own_conf, capfd):
    """``_known_keys`` was remembered per config name only: after a key was added to config.yaml, the next
    ``xaibench.run`` of the same process refused the key its own config now defines."""
    assert len(xaibench.run(BASE)) == 12  # 3 metrics x 4 samples: config.yaml's keys are remembered
    root = own_conf / "config.yaml"
    _write(root, root.read_text().replace("seed: 0 ", "note: first try\nseed: 0 ", 1))
    assert len(xaibench.run(BASE)) == 12
    assert "unknown config key" not in capfd.readouterr().err


def test_a_cached_plan_checks_hydras_own_folder_again(here, capfd, multirun):
    """The rerun of a sweep whose ``hydra.run.dir`` / ``hydra.sweep.dir`` had become a file loaded its cached
    plan: Hydra's ``FileExistsError`` after the sweep folder was claimed (exit 1; a single run) or a sweep that
    ran although its folder cannot be written (every cell stored), where the first run refuses it (exit 2)."""
    key = "hydra.sweep.dir" if multirun else "hydra.run.dir"
    argv = [*(["-m"] if multirun else []), *BASE, *(["seed=0,1"] if multirun else []), f"{key}=hydra_out"]
    code, err = _exit_code(argv, capfd)
    assert code == 0, err
    shutil.rmtree(here / "hydra_out")
    (here / "hydra_out").write_text("a file where Hydra's folder was")
    before = sorted(str(p) for p in (here / "results").rglob("*"))
    code, err = _exit_code(argv, capfd)
    assert code == 2 and err.count("\n") == 1, err
    assert f"{key} hydra_out is not a writable folder: hydra_out is a file, not a folder; choose another" in err
    assert sorted(str(p) for p in (here / "results").rglob("*")) == before


def test_hydra_settings_set_in_an_experiment_file_are_applied(here, monkeypatch, capfd):
    """The CLI ran a sweep in process unless a ``hydra.*`` override was on the command line: an experiment file's
    ``hydra.job.env_set`` was dropped without a word (the cells went to results/store). It now runs through
    Hydra, which applies it, as for the same setting on the command line."""
    monkeypatch.setenv("XAIBENCH_STORE", "results/store")  # restored after: Hydra's env_set changes it for the job
    _write(here / "myconf" / "experiment" / "es.yaml",
           "# @package _global_\nhydra:\n  job:\n    env_set:\n      XAIBENCH_STORE: env_store\n")
    code, err = _exit_code(["-m", *BASE, "seed=0,1", f"hydra.searchpath=[file://{here / 'myconf'}]",
                            "experiment=es"], capfd)
    assert code == 0, err
    assert len(list((here / "env_store" / "v2" / "cells").rglob("*.artefact"))) > 0
    assert not (here / "results" / "store").exists()


def test_an_experiments_env_copy_alone_runs_in_process(here, monkeypatch):
    """``hydra.job.env_copy`` in an experiment puts this process's own values into ``hydra.job.env_set``, which the
    jobs of an in-process run see anyway: ``xaibench.run`` refused such a sweep as "sets hydra.job.env_set" (and the
    CLI handed it to Hydra). Another ``env_set`` value still counts."""
    from xaibench.config.plan import make_plan

    monkeypatch.setenv(VAR, "copied")
    folder = here / "myconf" / "experiment"
    _write(folder / "copy.yaml", f"# @package _global_\nhydra:\n  job:\n    env_copy: [{VAR}]\n")
    _write(folder / "both.yaml", f"# @package _global_\nhydra:\n  job:\n    env_copy: [{VAR}]\n"
                                 f"    env_set:\n      XAIBENCH_STORE: env_store\n")
    searchpath = f"hydra.searchpath=[file://{here / 'myconf'}]"
    assert len(xaibench.run([*BASE, searchpath, "experiment=copy"])) == 12  # 3 metrics x 4 samples, in process
    both = make_plan([*BASE, "seed=0,1", searchpath, "experiment=both"], multirun=True)
    assert not both.in_process and both.hydra_settings == ("hydra.job.env_set",)


@pytest.fixture(params=[False, True], ids=["run", "multirun"])
def multirun(request) -> bool:
    return request.param


@pytest.mark.parametrize("experiment, first, then, expected", [
    (f"n_samples: 4\nhydra:\n  job:\n    env_copy: [{VAR}]\n", "1", None,
     f"hydra.job.env_copy names the environment variable '{VAR}', which is not set here"),
    (f"n_samples: ${{oc.decode:${{oc.env:{VAR}}}}}\n", "4", "100000",
     "n_samples=100000 exceeds the 45 test samples of dataset iris"),
], ids=["env_copy", "oc.env"])
def test_a_cached_plan_is_not_used_once_a_variable_its_configs_read_changed(own_conf, capfd, monkeypatch, experiment,
                                                                           first, then, expected):
    """An experiment file's ``hydra.job.env_copy`` (or an ``${oc.env:...}`` value) read a variable when the plan
    was made; the rerun with the variable unset (or changed) loaded the cached plan and ran (exit 0) where a
    fresh pre-flight refuses it: Hydra's KeyError, a sample count the dataset lacks."""
    _write(own_conf / "experiment" / "env.yaml", "# @package _global_\n" + experiment)
    argv = ["-m", *BASE[:3], "seed=0,1", "experiment=env"]  # n_samples from the experiment
    monkeypatch.setenv(VAR, first)
    code, err = _exit_code(argv, capfd)
    assert code == 0, err
    if then is None:
        monkeypatch.delenv(VAR)
    else:
        monkeypatch.setenv(VAR, then)
    before = sorted(str(p) for p in (own_conf.parent / "results").rglob("*"))
    code, err = _exit_code(argv, capfd)
    assert code == 2 and err.count("\n") == 1 and expected in err, err
    assert sorted(str(p) for p in (own_conf.parent / "results").rglob("*")) == before
    monkeypatch.setenv(VAR, first)  # back as planned: the cached plan again
    code, err = _exit_code(argv, capfd)
    assert code == 0, err


@pytest.mark.parametrize("subdir, refused", [
    ("${sweep_id}", "jobs 0 and 1"), ("s_${method.name}", "jobs 0 and 1"),
    ("${model.name}/${method.name}", "jobs 0 and 1"),
    ("s${seed}", "jobs 0 and 2"), ("${seed}/${method.name}", None), ("${hydra.job.override_dirname}", None),
    ("jobs/${hydra.job.num}", None),
])
def test_a_subdir_is_refused_when_two_jobs_would_share_its_folder(here, subdir, refused):
    """``hydra.sweep.subdir=${sweep_id}`` passed (it has an interpolation) though it is one folder for every job:
    judged from each job's composed config, as Hydra would resolve it."""
    overrides = [*BASE[:2], "method=saliency,random", "seed=0,1", "n_samples=4", f"hydra.sweep.subdir={subdir}"]
    if refused is None:
        assert len(validate(overrides, multirun=True)) == 4
        return
    with pytest.raises(UserError) as error:
        validate(overrides, multirun=True)
    assert f"hydra.sweep.subdir={subdir!r} is the same folder" in str(error.value)
    assert refused in str(error.value) and "include the job's number" in str(error.value)


PLUGIN = '''
from dataclasses import dataclass

from xaibench.explainers.base import DENSE_MODALITIES, Explainer
from xaibench.registry import EXPLAINERS
from xaibench.types import Explanation


@EXPLAINERS.register("lead24_scaled")
@dataclass(frozen=True)
class Scaled(Explainer):
    modalities = DENSE_MODALITIES
    scale: float = 1.0

    def explain(self, model, x, target):
        return Explanation(self.scale * x)
'''


def test_a_cached_plan_follows_the_plugins_it_was_checked_with(own_conf):
    """A plan checked with a plugin method (``$XAIBENCH_PLUGINS``, its config under ``$XAIBENCH_CONF_DIR``) was
    served from the plan cache to a process without the plugin, or after the plugin's parameters changed: the
    pre-flight said nothing and the cells failed later. The plan's key now covers ``$XAIBENCH_PLUGINS`` and the
    plugin files' digests, so each such run is checked again (one line, exit 2). Fresh processes: a process keeps
    its registered plugins."""
    import subprocess
    import sys

    here = own_conf.parent
    (here / "lead24_plugin.py").write_text(PLUGIN)
    _write(own_conf / "method" / "lead24_scaled.yaml", "name: lead24_scaled\nscale: 2.0\n")
    script = ("import sys\nfrom xaibench.config.plan import make_plan\nfrom xaibench.errors import UserError\n"
              "try:\n    make_plan(sys.argv[1:], multirun=False)\nexcept UserError as error:\n    print(error)\n"
              "else:\n    print('planned')\n")

    def plan(plugins: str | None) -> str:
        env = {k: v for k, v in os.environ.items() if k != "XAIBENCH_PLUGINS"}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(here), env.get("PYTHONPATH")]))
        if plugins:
            env["XAIBENCH_PLUGINS"] = plugins
        done = subprocess.run([sys.executable, "-c", script, "model=mlp", "dataset=iris", "method=lead24_scaled",
                               "n_samples=4"], cwd=here, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    assert plan("lead24_plugin") == "planned"
    assert plan(None).startswith("unknown method 'lead24_scaled'")
    assert plan("lead24_plugin") == "planned"
    _write(here / "lead24_plugin.py", PLUGIN.replace("scale: float = 1.0", "factor: float = 1.0"))
    assert plan("lead24_plugin") == "method 'lead24_scaled': unknown parameter(s) scale; valid: factor"
