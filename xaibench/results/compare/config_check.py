"""Was a sweep's table made by the config as it is now? ``compare`` refuses a table of an edited config.

A maintainer edits ``conf/experiment/my_ci.yaml`` (a metric parameter, a method added to the sweep, another
``n_samples``) or a config it selects (``conf/method/saliency.yaml``, a ``ci_case``) and runs ``compare`` on the
previous run's folder: the old table still matches the baseline, and the verdict "pass" says nothing about the
edited config. So the CLI records its command line in the sweep folder's ``sweep.json`` (``command``:
overrides, multirun, config name, working folder), and the sweep its planned cell keys (``cells.planned``); here
the same command is composed again with the config files as they are now, and its cells' keys compared.

What counts as a change is exactly what changes a cell key (``CellSpec.key``): the cells a sweep defines
(which model x dataset x method x seed combinations) and, for each, the model, dataset, method and metric
parameters, ``seed``, ``n_samples``, ``target``, ``explain_output``, ``engine``, xaibench's version and the
``$XAIBENCH_PLUGINS`` modules' content, wherever the value comes from (``conf/``, ``hydra.searchpath`` folders,
the experiment, an ``${oc.env:...}`` interpolation). Settings outside the key (``device``, ``batch_size``,
``chunk_size``, ``threads``, ``store_dir``, ``results_dir``, labels, logger, launcher) are not: they do not move
scores. A command line you have not run cannot be known: compare checks the one the sweep ran (``xaibench.run``
records its overrides as the CLI does).

Where it cannot be checked -- a table outside its sweep folder (a copy, e.g. a CI artifact), a sweep folder
without the record (written by an xaibench before the check, or by ``xaibench.run`` before it recorded one), a
folder that is none of its command's sweep folders -- ``check_config`` says so and why (``unchecked``), and compare
prints it on stderr, in the report and in the JSON: a pass must never hide that the config behind it was not seen.
"""
from __future__ import annotations

import os
import shlex
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from xaibench.errors import UserError

SHOWN = 3  # cells named in the message


@dataclass(frozen=True)
class ConfigCheck:
    """Whether the current table is what its sweep's recorded command composes now.

    Attributes:
        state: ``fresh`` (its cells are the command's now), ``stale`` (they are not), ``unchecked`` (it cannot be
            told: ``reason`` says why).
        reason: the stale clause (``config_change``) or why it was not checked; "" when fresh.
        command: the recorded command, as a shell (or Python) would run it again; "" where none was recorded.
    """

    state: str
    reason: str = ""
    command: str = ""

    def as_dict(self) -> dict[str, str]:
        return {"state": self.state, "reason": self.reason, "command": self.command}

    def text(self, current: str) -> str:
        """One line for stderr and the report ("" when fresh)."""
        if self.state == "unchecked":
            return (f"current {current}: its config was not checked ({self.reason}), so a pass says nothing about "
                    "config edits since its sweep")
        if self.state == "stale":
            return f"current {current} is stale, compared anyway (--allow-stale): {self.reason}"
        return ""


def check_config(current: str | os.PathLike[str]) -> ConfigCheck:
    """``ConfigCheck`` of the table or sweep folder ``current`` (a table file is checked through the sweep folder it
    lies in: its ``sweep.json`` and ``cells.planned``)."""
    from xaibench.results.collect import TABLE_NAME
    from xaibench.results.manifest import MANIFEST_NAME, PLANNED_NAME, recorded_command

    path = Path(current)
    table = not path.is_dir()
    folder = path.parent if table else path
    if not (folder / MANIFEST_NAME).is_file():
        return ConfigCheck("unchecked", (
            f"no {MANIFEST_NAME} beside it: a table outside its sweep folder, e.g. a copied CI artifact; give the "
            "sweep folder, which is checked also when copied or moved") if table else (
            f"no {MANIFEST_NAME}: not a sweep folder, or one from before xaibench recorded sweeps"))
    if table and path.name != TABLE_NAME:
        return ConfigCheck("unchecked", f"{path.name} is not its sweep folder's {TABLE_NAME}; give the sweep folder")
    command = recorded_command(folder)
    if command is None:
        return ConfigCheck("unchecked", f"its {MANIFEST_NAME} records no command: a sweep of an older xaibench; "
                           "rerun it to have it checked")
    if not (folder / PLANNED_NAME).is_file():
        return ConfigCheck("unchecked", f"the folder has no {PLANNED_NAME} (the cells its sweep ran): a sweep of an "
                           "older xaibench; rerun it to have it checked", rerun_command(command))
    ran_in = command.get("cwd")
    if ran_in and not Path(ran_in).is_dir():  # its relative paths and hydra.searchpath point into that folder
        return ConfigCheck("unchecked", f"its sweep ran in {ran_in}, not a folder here: copied from another machine "
                           "or checkout (a CI artifact?), its command cannot be composed as it ran; compare it where "
                           "it ran, or rerun the sweep here", rerun_command(command))
    return _checked(command, folder)


def _checked(command: dict, folder: Path) -> ConfigCheck:
    shown = rerun_command(command)
    try:
        change = config_change(folder)
    except _Untold as why:
        return ConfigCheck("unchecked", str(why), shown)
    return ConfigCheck("stale" if change else "fresh", change, shown)


class _Untold(Exception):
    """The recorded command's sweep folders: which of them this one is cannot be told."""


def config_change(folder: Path) -> str:
    """Why the sweep in ``folder`` is not what its recorded command defines now ('' when it is, or when it records no
    command; raises ``_Untold`` when the folder is none of the command's sweep folders).

    Returns a clause for one line: ``its 20 cells are not what `xaibench -m experiment=ci` defines now (2 cells
    differ: ...)``; the caller adds what to do.
    """
    from xaibench.results.manifest import planned_cells, recorded_command

    command = recorded_command(folder)
    planned = set(planned_cells(folder) or ())  # the keys ("<key>\t<label>" lines: not split on white space)
    if command is None or not planned:
        return ""
    shown = rerun_command(command)
    try:
        now = _cells_now(command, folder.resolve())
    except UserError as error:
        return f"its command `{shown}` no longer composes ({str(error).splitlines()[0]})"
    if not now:  # the command's jobs write other sweep folders: which of them this one was cannot be told
        raise _Untold(f"its command `{shown}` writes several sweep folders, none of them this one or of its name "
                      "(moved or copied under another name?)")
    added = [name for key, name in now.items() if key not in planned]
    gone = len(planned - set(now))
    if not added and not gone:
        return ""
    differ = []
    if added:
        names = ", ".join(sorted(set(added))[:SHOWN]) + (", ..." if len(set(added)) > SHOWN else "")
        differ.append(f"{len(added)} of the {len(now)} cells it defines now were not run ({names})")
    if gone:
        differ.append(f"{gone} of the {len(planned)} cells it ran are no longer defined")
    return (f"it was made by another config than `{shown}` composes now: {'; '.join(differ)} (a config file, "
            "the experiment, a plugin module or xaibench's version changed since the sweep: docs/ci.md)")


def rerun_command(command: dict) -> str:
    """The recorded command line, as a shell would run it again (a sweep of ``xaibench.run``: that call)."""
    name = command.get("config_name") or "config"
    if command.get("api"):
        multirun = ", multirun=True" if command.get("multirun") else ""
        return f"xaibench.run({[str(o) for o in command['overrides']]!r}{multirun})"
    words = ["xaibench", *(["--config-name", name] if name != "config" else []),
             *(["-m"] if command.get("multirun") else []), *map(str, command["overrides"])]
    return " ".join(FRESH_STORE if _gone_store(word, command.get("cwd")) else shlex.quote(word) for word in words)


FRESH_STORE = 'store_dir="$(mktemp -d)"'  # a rerun's store, shown for a temporary one that is gone


def _gone_store(word: str, cwd) -> bool:
    """Whether ``word`` is a ``store_dir=`` override naming a folder that is no longer there: the CI scripts' fresh
    temporary store (``store_dir=$(mktemp -d)``, removed when they end). Shown as it was, the rerun hint would create
    that path and leave it behind; a cold store is what the scripts meant."""
    name, _, value = word.partition("=")
    if name.lstrip("+") != "store_dir" or not value:
        return False
    path = Path(value).expanduser()
    return not (path if path.is_absolute() else Path(cwd or ".") / path).exists()


def _cells_now(command: dict, folder: Path) -> dict[str, str]:
    """``{cell key: model/dataset/method}`` of the cells the recorded command defines now for ``folder``."""
    from omegaconf import OmegaConf

    from xaibench.config.plan import cached_configs
    from xaibench.config.preflight import compose_jobs, expand_sweep
    from xaibench.engine.cell import CellSpec
    from xaibench.sweep import sweep_dir

    overrides = [str(o) for o in command["overrides"]]
    name = str(command.get("config_name") or "config")
    with _working_folder(command.get("cwd")), _plugins(command.get("plugins")):  # as the sweep read them
        multirun = bool(command.get("multirun"))
        configs = cached_configs(overrides, multirun=multirun, config_name=name)  # the sweep's own, if unedited
        if configs is None:
            configs = compose_jobs(expand_sweep(overrides, multirun=multirun, config_name=name), name)
        folders: dict[Path, list] = {}
        for cfg in configs:
            folders.setdefault(sweep_dir(cfg).resolve(), []).append(cfg)
        cells = {}
        for cfg in _jobs_of(folders, folder):
            data = OmegaConf.to_container(cfg, resolve=True)
            try:
                cell = CellSpec.from_config(data)
            except (KeyError, TypeError, ValueError) as error:
                raise UserError(f"a job's config is not a cell: {error}") from None
            cells[cell.key] = f"{data['model']['name']}/{data['dataset']['name']}/{data['method']['name']}"
    return cells


def _jobs_of(folders: dict[Path, list], folder: Path) -> list:
    """The job configs of ``folder`` among a command's sweep folders: the folder itself, else (the folder was moved
    or copied, e.g. a CI artifact) the command's only folder or the one of the same name (``sweep_id``); none
    when it cannot be told which (then nothing is checked)."""
    if folder in folders:
        return folders[folder]
    if len(folders) == 1:
        return next(iter(folders.values()))
    named = [jobs for path, jobs in folders.items() if path.name == folder.name]
    return named[0] if len(named) == 1 else []


@contextmanager
def _plugins(names) -> Iterator[None]:
    """``$XAIBENCH_PLUGINS`` as the sweep had it (a cell key joins its modules' file digests): a compare run without
    it (another CI step's environment) must not read as a change; an edited module still does."""
    if not isinstance(names, str):
        yield
        return
    before = os.environ.get("XAIBENCH_PLUGINS")
    os.environ["XAIBENCH_PLUGINS"] = names
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("XAIBENCH_PLUGINS", None)
        else:
            os.environ["XAIBENCH_PLUGINS"] = before


@contextmanager
def _working_folder(path) -> Iterator[None]:
    """Run in ``path`` (the sweep's working folder) when it is there; else stay."""
    before = os.getcwd()
    if path and Path(path).is_dir():
        os.chdir(path)
    try:
        yield
    finally:
        os.chdir(before)
