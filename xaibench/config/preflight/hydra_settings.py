"""Values of Hydra's own settings that Hydra accepts and then runs badly, checked on the composed config before
anything is written (``hydra_keys`` refuses the keys Hydra would ignore; this module, values of known keys).

- ``hydra.run.dir`` / ``hydra.sweep.dir``, the folders Hydra writes its job configs into: empty (``$OUT`` unset)
  wrote ``.hydra/`` and ``jobs/`` into the working folder; a file on the way failed after the sweep folder was
  claimed (exit 1).
- ``hydra.sweep.subdir``: one folder for every job of a sweep (``a``, empty) made the jobs overwrite each other's
  configs and logs.
- ``hydra.sweeper.max_batch_size`` below 1: no job launched (-3), or all at once (0), exit 1 after the claim.
- ``hydra.mode`` against ``-m``: the pre-flight checked one run and Hydra launched a sweep (or the reverse).
- ``hydra.callbacks.xaibench_sweep`` removed from a sweep: its jobs ran and it was never finished (no table, exit 0).
- ``hydra.job.env_copy`` naming a variable that is not set: Hydra's ``KeyError`` traceback while composing.
"""
from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from xaibench.errors import UserError

SWEEP_CALLBACK = "xaibench.sweep.SweepCallback"  # conf/config.yaml's hydra.callbacks.xaibench_sweep._target_
SUITE_SUBDIR = "jobs/${hydra.job.num}"  # conf/config.yaml's hydra.sweep.subdir
SUITE_DIR = "${results_dir}/${sweep_id}"  # conf/config.yaml's hydra.run.dir and hydra.sweep.dir


def check_hydra_run_settings(cfg: DictConfig, *, multirun: bool, n_jobs: int) -> None:
    """Refuse Hydra settings of ``cfg`` (composed with ``return_hydra_config=True``) that would run badly.

    Args:
        cfg: the sweep's config composed with its fixed overrides (the one Hydra's sweeper reads ``hydra.sweep``
            from), or the single run's config (``composition.hydra_config``).
        multirun: ``-m`` was given.
        n_jobs: the jobs the sweep expands to (1 for a single run).

    Raises:
        UserError: one line naming the setting and what it accepts.
    """
    hydra = cfg.hydra
    _check_mode(hydra, multirun)
    if multirun:  # a single run finishes its sweep folder itself
        _check_callback(hydra)
        _check_sweeper(hydra)
        _check_subdir(hydra, n_jobs)
        _check_max_batch_size(hydra)


def check_hydra_folders(cfg: DictConfig, *, multirun: bool) -> None:
    """Refuse a ``hydra.sweep.dir`` (``-m``) or ``hydra.run.dir`` that is empty or that cannot be created here.

    Apart from :func:`check_hydra_run_settings`: this one reads the filesystem, so only the run's pre-flight calls
    it (``compare`` composes a recorded command elsewhere, where the folder need not be writable).
    """
    check_folders(hydra_folders(cfg, multirun=multirun))


def hydra_folders(cfg: DictConfig, *, multirun: bool) -> tuple[tuple[str, str], ...]:
    """``(("hydra.sweep.dir", path),)`` (``-m``; else ``hydra.run.dir``) when the user set a folder of their own,
    resolved; ``()`` for the suite's default (the sweep folder, checked as ``results_dir`` and ``sweep_id``) or a
    folder known only when Hydra runs the job. A cached plan keeps them, to check them again (:func:`check_folders`).

    Raises:
        UserError: the folder is empty or null (an unset shell variable), or not a path.
    """
    key, example = ("hydra.sweep.dir", "multirun/xaibench") if multirun else ("hydra.run.dir", "outputs/xaibench")
    path = _folder(cfg.hydra, key, example)
    return () if path is None else ((key, path),)


def check_folders(folders: tuple[tuple[str, str], ...]) -> None:
    """Refuse any ``(option, path)`` of ``folders`` the filesystem cannot hold or create (``check_folder_path``)."""
    for what, path in folders:
        check_folder_path(path, what)


def settings_only_hydra_applies(hydra: DictConfig, *, multirun: bool) -> tuple[str, ...]:
    """Hydra settings of the composed ``hydra`` section that differ from the suite's own (``conf/config.yaml``) and
    that only Hydra applies: ``hydra.job.env_set``, ``hydra.job.chdir`` and the folders Hydra writes
    (``hydra.sweep.dir``/``subdir`` with ``-m``, else ``hydra.run.dir``). The in-process launcher ran without them
    without a word when a config file (an experiment) set them; the command line's are ``plan._needs_hydra``'s.
    Variables ``hydra.job.env_copy`` copied into ``env_set`` are not counted: they hold this process's own values,
    which its jobs see anyway (Hydra's ``env_copy`` is for a launcher's remote jobs)."""
    raw = OmegaConf.to_container(hydra, resolve=False)
    job, run, sweep = (raw.get(name) or {} for name in ("job", "run", "sweep"))
    env_set = set(job.get("env_set") or {}) - set(job.get("env_copy") or ())
    found = [key for key, differs in (("hydra.job.env_set", bool(env_set)),
                                      ("hydra.job.chdir", bool(job.get("chdir")))) if differs]
    if multirun:
        found += [key for key, value, suite in (("hydra.sweep.dir", sweep.get("dir"), SUITE_DIR),
                                                ("hydra.sweep.subdir", sweep.get("subdir"), SUITE_SUBDIR))
                  if value != suite]
    elif run.get("dir") != SUITE_DIR:
        found.append("hydra.run.dir")
    return tuple(found)


def env_copy_error(error: KeyError) -> UserError | None:
    """The one line for Hydra's ``KeyError`` when ``hydra.job.env_copy`` names a variable that is not set (Hydra
    reads ``os.environ[name]`` while composing); None for any other ``KeyError``."""
    name = error.args[0] if error.args else None
    if not isinstance(name, str) or name in os.environ:
        return None
    return UserError(f"hydra.job.env_copy names the environment variable {name!r}, which is not set here; set it "
                     f"(export {name}=...) or give its value with +hydra.job.env_set.{name}=<value>")


def _check_mode(hydra: DictConfig, multirun: bool) -> None:
    mode = OmegaConf.select(hydra, "mode", default=None)
    if mode is None or str(mode).rsplit(".", 1)[-1] == ("MULTIRUN" if multirun else "RUN"):
        return
    fix = "drop it (-m alone makes a sweep)" if multirun else "drop it and add -m (multirun) to run a sweep"
    raise UserError(f"hydra.mode={str(mode).rsplit('.', 1)[-1]} but {'-m' if multirun else 'no -m'} was given; "
                    f"the sweep or single run is chosen by -m/--multirun: {fix}")


def _check_callback(hydra: DictConfig) -> None:
    callback = OmegaConf.select(hydra, "callbacks.xaibench_sweep", default=None)
    target = OmegaConf.select(callback, "_target_", default=None) if isinstance(callback, DictConfig) else None
    if target != SWEEP_CALLBACK:
        raise UserError(f"hydra.callbacks.xaibench_sweep must stay {{_target_: {SWEEP_CALLBACK}}} (it writes the "
                        f"sweep's table when its jobs end), got {_plain(callback)!r}; add a callback of your own "
                        f"beside it: +hydra.callbacks.<name>={{_target_: ...}}")


def _folder(hydra: DictConfig, key: str, example: str) -> str | None:
    """``hydra.run.dir`` / ``hydra.sweep.dir`` resolved, if a folder path (None: the suite's default, the sweep
    folder, checked as ``results_dir`` and ``sweep_id``, or known only when Hydra runs the job)."""
    if OmegaConf.to_container(hydra, resolve=False).get(key.split(".")[1], {}).get("dir") == SUITE_DIR:
        return None
    try:
        value = OmegaConf.select(hydra, key.removeprefix("hydra."), throw_on_missing=True)
    except OmegaConfBaseException:  # ${hydra.job.num}, ${hydra.runtime...}: known only when Hydra runs the job
        return None
    if value is None or (isinstance(value, str) and not value.strip()):
        what = "null" if value is None else "empty (an unset shell variable?)"
        raise UserError(f"{key} is {what}: Hydra would write its job configs into the working folder; give a "
                        f"folder, e.g. {key}={example}, or leave it out (the default is the sweep folder, "
                        f"results_dir/sweep_id)")
    if not isinstance(value, str):
        raise UserError(f"{key} must be a folder path, got {value!r}; quote a folder name made of digits: "
                        f"\"{key}='{value}'\"")
    return value


def check_folder_path(path: str, what: str) -> None:
    """Refuse a folder the filesystem cannot hold or create (a name over its NAME_MAX bytes, a file on the way, a
    read-only or forbidden folder), naming ``what`` (the option); create nothing.

    A name longer than the filesystem takes raised ``OSError`` (ENAMETOOLONG) from ``Path.exists`` itself: a
    traceback for ``results_dir``, exit 1 after ``results/runs`` was made for ``sweep_id``.
    """
    from xaibench.results.manifest import check_writable

    check_name_lengths(path, what)
    check_writable(Path(path), what)


def check_name_lengths(path: str, what: str) -> None:
    """Refuse a path with a folder name longer than its filesystem takes (NAME_MAX bytes, 255 on most)."""
    longest = max((len(os.fsencode(name)) for name in Path(path).parts), default=0)
    if longest <= 100:  # below every filesystem's limit: no pathconf call (this runs for every job's folders)
        return
    limit = _name_max(Path(path))
    for name in Path(path).parts:
        if len(os.fsencode(name)) > limit:
            shown = name if len(name) <= 40 else f"{name[:20]}...{name[-10:]}"
            raise UserError(f"{what} has a folder name of {len(os.fsencode(name))} bytes ({shown!r}), longer than "
                            f"the {limit} this filesystem takes; choose a shorter {what}")


def _name_max(path: Path) -> int:
    """The longest file name (bytes) the filesystem of ``path``'s nearest existing folder takes (255 if unknown)."""
    folder = path.absolute()
    while folder != folder.parent:
        try:
            if folder.is_dir():
                break
        except OSError:  # a name too long on the way
            pass
        folder = folder.parent
    try:
        return os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError):
        return 255


def _check_subdir(hydra: DictConfig, n_jobs: int) -> None:
    """Each job's folder under the sweep dir must differ between jobs: a value without an interpolation is one
    folder for all of them."""
    subdir = OmegaConf.to_container(hydra.sweep, resolve=False).get("subdir") if "sweep" in hydra else SUITE_SUBDIR
    if n_jobs < 2 or (isinstance(subdir, str) and "${" in subdir):
        return
    raise UserError(f"hydra.sweep.subdir={_plain(subdir)!r} is one folder for all {n_jobs} jobs of the sweep, whose "
                    f"configs and logs would overwrite each other; include the job's number, as the default "
                    f"'hydra.sweep.subdir=jobs/${{hydra.job.num}}' (quoted for the shell), or leave it out")


JOB_NUMBER_REFS = ("hydra.job.num", "hydra:job.num", "hydra.job.id", "hydra:job.id")  # a different one per job
OVERRIDE_DIRNAME_REFS = ("hydra.job.override_dirname", "hydra:job.override_dirname")
INTERPOLATION = re.compile(r"\$\{([^${}]*)\}")
_ABSENT = object()  # OmegaConf.select's answer for a key the config does not have


def check_subdir_per_job(hydra: DictConfig, jobs: Sequence[Sequence[str]], configs: Sequence[DictConfig]) -> None:
    """Refuse a ``hydra.sweep.subdir`` whose interpolations give two jobs of the sweep the same folder
    (``${sweep_id}``, ``${model.name}`` over a sweep of methods): their configs and logs overwrite each other.

    Judged from the jobs' composed configs: ``${hydra.job.num}`` / ``id`` differ per job, ``override_dirname``
    is each job's (:func:`override_dirname`), a key of the config its value in each job; a key the config does not
    have is refused too (even for one job). A subdir with other Hydra keys, resolvers or nested interpolations is
    not judged (known only when Hydra runs the job); one without interpolations is
    :func:`check_hydra_run_settings`'s.

    Args:
        hydra: the sweep's ``hydra`` section (``composition.hydra_config``'s).
        jobs: each job's overrides (``composition.expand_sweep``); configs: their composed configs, in order.
    """
    subdir = OmegaConf.to_container(hydra.sweep, resolve=False).get("subdir") if "sweep" in hydra else SUITE_SUBDIR
    if not configs or not isinstance(subdir, str):
        return
    refs = [ref.strip() for ref in INTERPOLATION.findall(subdir)]
    if not refs or "${" in INTERPOLATION.sub("", subdir) or not all(map(_judged, refs)):
        return
    first: dict[tuple, int] = {}
    for number, (job, cfg) in enumerate(zip(jobs, configs)):
        values = []
        for ref in refs:
            if ref in OVERRIDE_DIRNAME_REFS:
                values.append(override_dirname(job, hydra))
                continue
            try:
                value = OmegaConf.select(cfg, ref, default=_ABSENT, throw_on_missing=True)
            except OmegaConfBaseException:  # an interpolation known only when the job runs
                return
            if value is _ABSENT:  # Hydra's InterpolationKeyError traceback, after the sweep folder was claimed
                raise UserError(f"hydra.sweep.subdir={subdir!r} refers to {ref!r}, which the job's config does not "
                                f"have; use one of its keys, e.g. 'hydra.sweep.subdir=${{model.name}}/"
                                f"${{hydra.job.num}}' (quoted for the shell), or leave it out")
            values.append(str(value))
        other = first.setdefault(tuple(values), number)
        if other != number:
            folder = INTERPOLATION.sub(lambda _, parts=iter(values): next(parts), subdir)
            raise UserError(f"hydra.sweep.subdir={subdir!r} is the same folder ({folder!r}) for jobs {other} and "
                            f"{number} of the sweep, whose configs and logs would overwrite each other; include the "
                            f"job's number, e.g. 'hydra.sweep.subdir={subdir}/${{hydra.job.num}}' (quoted for the "
                            f"shell), or leave it out (the default is jobs/${{hydra.job.num}})")


def override_dirname(job: Sequence[str], hydra: DictConfig) -> str:
    """The job's ``hydra.job.override_dirname`` as Hydra makes it (``hydra.core.utils.get_overrides_dirname``):
    its overrides but Hydra's own and ``hydra.job.config.override_dirname.exclude_keys``, sorted, joined by its
    ``item_sep``, with ``kv_sep`` for ``=``."""
    settings = OmegaConf.select(hydra, "job.config.override_dirname", default=None) or {}
    excluded = set(settings.get("exclude_keys") or ())
    kept = []
    for override in job:
        key = override.split("=", 1)[0].lstrip("+~").split("@", 1)[0]
        if not key.startswith(("hydra.", "hydra/")) and key not in excluded:
            kept.append(override)
    joined = str(settings.get("item_sep", ",")).join(sorted(kept))
    return joined.replace("=", str(settings.get("kv_sep", "=")))


def _judged(ref: str) -> bool:
    """An interpolation of ``hydra.sweep.subdir`` whose value per job is known here: a key of the job's config, or
    its overrides; not a job number (always differs), another Hydra key or a resolver (known when the job runs)."""
    return ref in OVERRIDE_DIRNAME_REFS or not (ref in JOB_NUMBER_REFS or ":" in ref or ref.split(".")[0] == "hydra")


def _check_sweeper(hydra: DictConfig) -> None:
    """``~hydra/sweeper``, ``hydra.sweeper=null``: Hydra's traceback after the sweep folder was claimed."""
    try:
        target = OmegaConf.select(hydra, "sweeper._target_", throw_on_missing=True)
    except OmegaConfBaseException:
        target = None
    if not target:
        raise UserError("no sweeper is chosen (hydra.sweeper has no _target_: hydra.sweeper=null or ~hydra/sweeper?); "
                        "leave it out (Hydra's basic sweeper) or choose one with hydra/sweeper=<name>")


def _check_max_batch_size(hydra: DictConfig) -> None:
    size = OmegaConf.select(hydra, "sweeper.max_batch_size", default=None)
    if size is None or (isinstance(size, int) and not isinstance(size, bool) and size >= 1):
        return
    raise UserError(f"hydra.sweeper.max_batch_size must be a positive integer (jobs launched at once) or null (all), "
                    f"got {size!r}")


def _plain(value):
    return OmegaConf.to_container(value, resolve=False) if isinstance(value, DictConfig) else value
