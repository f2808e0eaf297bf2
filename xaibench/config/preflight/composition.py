"""The sweep's jobs as Hydra's basic sweeper expands them, and their configs composed with Hydra's compose API
(overrides parsed, group names checked, unknown keys refused in one line)."""
from __future__ import annotations

import copy
import difflib
import re
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Glob
from hydra.errors import HydraException, MissingConfigException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from xaibench.config.paths import GROUPS, conf_dir
from xaibench.config.preflight.group_names import _check_group_names, _search_dirs
from xaibench.config.preflight.hydra_settings import check_hydra_run_settings, env_copy_error
from xaibench.config.preflight.override_errors import (_first_line, _odd_character, _override_error, _unknown_key,
                                                      _value_to_quote)
from xaibench.config.preflight.remembered import RememberedCompositions, composition_key
from xaibench.errors import UserError


def expand_sweep(overrides: Sequence[str], *, multirun: bool, config_name: str = "config") -> list[list[str]]:
    """The list of per-job override lists Hydra's basic sweeper would launch (one entry when not multirun)."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper

    parser = OverridesParser.create()
    parsed = _parse_overrides(parser, overrides)
    _check_added_hydra_keys(parsed, multirun, config_name)
    if not multirun:
        sweeps = [o.input_line for o in parsed if o.is_sweep_override()]
        if sweeps:
            raise UserError(f"{sweeps[0]} is a sweep: add -m (multirun) to run every combination")
        single = hydra_config(overrides, config_name)
        declared = OmegaConf.select(single, "hydra.sweeper.params")
        if declared:
            listed = " ".join(f"{k}={v}" for k, v in declared.items())
            raise UserError(f"this config declares a sweep ({listed}): add -m (multirun) to run it")
        check_hydra_run_settings(single, multirun=False, n_jobs=1)
        return [list(overrides)]
    fixed = [o.input_line for o in parsed if not o.is_sweep_override()]
    try:
        base = hydra_config(fixed, config_name)
    except UserError as error:
        raise UserError(_on_the_base_config(str(error), parsed, config_name) or str(error)) from None
    params = OmegaConf.select(base, "hydra.sweeper.params") or {}
    from_config = [f"{k}={v}" for k, v in params.items()]
    all_overrides = []
    try:
        all_overrides = parser.parse_overrides(from_config + list(overrides))
        _set_group_lister(all_overrides)
        _check_group_names(all_overrides)
        batches = BasicSweeper.split_arguments(all_overrides, None)
    except HydraException as error:
        raise UserError(_first_line(error)) from None
    except ValueError as error:  # seed=range(0,3,0): Python's "range() arg 3 must not be zero", as a traceback
        raise UserError(f"{_failing_sweep(all_overrides) or 'a sweep'}: {error}") from None
    jobs = [list(job) for batch in batches for job in batch]
    if not jobs:  # Hydra launches nothing and the run exits 0 having done nothing
        empty = [o.input_line or f"{o.key_or_group}={o.value()}" for o in all_overrides
                 if o.is_sweep_override() and not list(o.sweep_string_iterator())]
        raise UserError(f"the sweep has no jobs: {', '.join(empty) or 'a swept key'} gives no value; "
                        f"give every swept key at least one value (e.g. seed=range(0,3) or seed=0,1,2)")
    check_hydra_run_settings(base, multirun=True, n_jobs=len(jobs))
    return jobs


def _on_the_base_config(message: str, parsed, config_name: str) -> str | None:
    """``method=saliency,smoothgrad method.abs=false``: Hydra sets the settings that are not swept on the sweep's
    base config, composed with the group's default (``integrated_gradients``, which has no ``abs``), before it
    sweeps the group; its "unknown key" named the default's keys as if the user had chosen it. Say so and give the
    fix (``++``: set in every job's choice, added to the default's); None for other errors."""
    found = re.match(r"unknown config key '(([^'.]+)\.[^']+)'; \2 has: ", message)  # not a typo's "did you mean"
    swept = found and next((o for o in parsed if o.is_sweep_override() and o.key_or_group == found.group(2)), None)
    setting = swept and next((o for o in parsed if not o.is_sweep_override()
                              and o.key_or_group == found.group(1) and o.input_line), None)
    if not setting:
        return None
    key, group = found.group(1), found.group(2)
    others = [o.input_line for o in parsed if not o.is_sweep_override() and o is not setting]
    try:
        default = OmegaConf.select(hydra_config(others, config_name), f"hydra.runtime.choices.{group}")
    except UserError:
        return None
    value = setting.input_line.partition("=")[2]
    return (f"{setting.input_line}: Hydra sets what is not swept on the sweep's base config, whose {group} is the "
            f"default {default!r}, before it sweeps {swept.input_line}, and {default!r} has no {key.partition('.')[2]!r}; "
            f"set it in each job's {group} with ++{key}={value} (every swept {group} must take it)")


def _failing_sweep(overrides) -> str | None:
    """The first sweep override whose values cannot be listed (``range(0,3,0)``), as the user wrote it."""
    for override in overrides:
        if override.is_sweep_override():
            try:
                list(override.sweep_string_iterator())
            except ValueError:
                return override.input_line or f"{override.key_or_group}=..."
    return None


def fixed_overrides(overrides: Sequence[str], *, multirun: bool) -> list[str]:
    """The overrides Hydra composes the sweep's own config from (its ``hydra.sweep``, ``hydra.launcher``): all but
    the sweeps (``-m``), or all of them (a single run, which has none)."""
    if not multirun:
        return list(overrides)
    parsed = OverridesParser.create().parse_overrides(list(overrides))
    return [o.input_line for o in parsed if not o.is_sweep_override()]


def hydra_config(overrides: Sequence[str], config_name: str = "config") -> DictConfig:
    """The config with its ``hydra`` section composed from ``overrides`` (no sweeps), once per process: the sweep's
    expansion, its Hydra settings' checks and its launcher read the same composition. Read it; never change it.

    Remembered under the command line, the config files as they are now (xaibench's, the ``file://`` and
    ``pkg://`` search paths') and the working folder, and composed again when an environment variable it read
    (``hydra.job.env_copy``, ``${oc.env:...}``) changed: a config edited within the process (a notebook, compare
    after a sweep) is composed again (``remembered``)."""
    return _HYDRA_CONFIGS.get(composition_key(overrides, config_name),
                              lambda: _compose(list(overrides), config_name, return_hydra_config=True))


_HYDRA_CONFIGS = RememberedCompositions(size=8)


def _parse_overrides(parser: OverridesParser, overrides: Sequence[str]) -> list:
    """Hydra's parsed overrides, with syntax errors and unknown group names as one-line ``UserError``s."""
    try:
        parsed = parser.parse_overrides(list(overrides))
    except HydraException as error:
        raise UserError(_odd_character(parser, overrides) or _value_to_quote(parser, overrides)
                        or _first_line(error) + QUOTING_HINT) from None
    _set_group_lister(parsed)
    _check_group_names(parsed)
    return parsed


def _set_group_lister(parsed) -> None:
    """Give the overrides the config loader a ``glob(...)`` sweep lists its group's options with (Hydra's
    sweepers set their own; without one, ``method=glob(*)`` raised "ConfigLoader is not set")."""
    if any(isinstance(o.value(), Glob) for o in parsed):
        loader = _config_loader(tuple(_search_dirs(parsed)))
        for override in parsed:
            override.config_loader = loader


@lru_cache(maxsize=8)
def _config_loader(extra: tuple[Path, ...]):
    """Hydra's loader over xaibench's configs and the user's ``hydra.searchpath`` dirs, as a run's sweeper has."""
    from hydra._internal.config_loader_impl import ConfigLoaderImpl
    from hydra._internal.utils import create_config_search_path

    search_path = create_config_search_path(str(conf_dir()))
    for folder in extra:
        search_path.append("xaibench-searchpath", f"file://{folder}")
    return ConfigLoaderImpl(config_search_path=search_path)


# Hydra's grammar error names no fix; paths with ~ or parentheses (`dataset.path=~/data.csv`) are the usual cause.
QUOTING_HINT = (" (quote values with characters such as ~ ( ) [ ] , = or spaces: 'dataset.path=\"~/my data.csv\"', "
                "'dataset.features=[\"length (cm)\",age]')")


def validate_names(overrides: Sequence[str], *, multirun: bool, config_name: str = "config") -> None:
    """The checks that need no data (names, override syntax, composition): for ``--cfg``/``--info``."""
    parsed = _parse_overrides(OverridesParser.create(), overrides)
    _check_added_hydra_keys(parsed, multirun, config_name)
    fixed = [o.input_line for o in parsed if not (multirun and o.is_sweep_override())]
    _check_top_level_keys(_compose(fixed, config_name, return_hydra_config=False), config_name)


def _check_added_hydra_keys(parsed, multirun: bool, config_name: str) -> None:
    """``+hydra.bogus=1``, which Hydra accepts and ignores; keys into a null Hydra section (``hydra_keys``)."""
    from xaibench.config.hydra_keys import check_hydra_settings

    fixed = [o for o in parsed if not (multirun and o.is_sweep_override())]
    check_hydra_settings(fixed, lambda rest: _compose(rest, config_name, return_hydra_config=True))


def compose_job(overrides: Sequence[str], config_name: str = "config") -> DictConfig:
    """The composed (job-level) config of one combination."""
    return _compose(list(overrides), config_name, return_hydra_config=False)


def compose_jobs(jobs: Sequence[Sequence[str]], config_name: str = "config") -> list[DictConfig]:
    """``compose_job`` for every job, composing each distinct selection of config groups once.

    Jobs that differ only in plain values (``seed=1``, ``n_samples=8``, ``model.hidden=[8]``) share their defaults
    list. Hydra's ``compose`` builds the config from the defaults list, then applies the value overrides in
    command-line order (``ConfigLoaderImpl._apply_overrides_to_config``); here the first part is done once per
    selection and the second, with that same Hydra function, per job, on a copy: the same configs, and a 48-job
    sweep over 2 seeds composes 24 times instead of 48 (~75 ms each). A job with any other override (a deletion,
    ``hydra.*``, a package) is composed on its own: Hydra applies those in command-line order with the values.
    """
    from hydra._internal.config_loader_impl import ConfigLoaderImpl

    parser = OverridesParser.create()
    bases: dict[tuple[str, ...], DictConfig] = {}
    configs = []
    for job in jobs:
        parsed = _parse_overrides(parser, job)
        plain = [_is_plain_value(o) for o in parsed]
        values = [o for o, is_value in zip(parsed, plain) if is_value]
        if not values or not all(is_value or _is_group_choice(o) for o, is_value in zip(parsed, plain)):
            configs.append(compose_job(job, config_name))  # e.g. a deletion: Hydra applies it in line order
            continue
        selection = tuple(o.input_line for o, is_value in zip(parsed, plain) if not is_value)
        if selection not in bases:
            bases[selection] = compose_job(list(selection), config_name)
        cfg = copy.deepcopy(bases[selection])
        try:
            ConfigLoaderImpl._apply_overrides_to_config(values, cfg)
        except (HydraException, OmegaConfBaseException, ValueError) as error:
            raise UserError(_override_error(error, lambda: bases[selection])) from None
        configs.append(cfg)
    return configs


def _is_plain_value(override) -> bool:
    """An override of a config value (``seed=1``, ``+x.y=2``), not of a config group or of Hydra's settings."""
    key = override.key_or_group
    return (override.package is None and not override.is_delete() and "/" not in key and not key.startswith("hydra")
            and ("." in key or not (conf_dir() / key).is_dir()))


def _is_group_choice(override) -> bool:
    """A choice of option in one of the suite's config groups (``model=mlp``): consumed by the defaults list."""
    key = override.key_or_group
    return (override.package is None and not override.is_delete() and "." not in key and not key.startswith("hydra")
            and (conf_dir() / key).is_dir())


def _check_top_level_keys(cfg: DictConfig, config_name: str, known: frozenset[str] | None = None) -> None:
    """Reject keys the root config does not define (``+n_sample=10``), naming the closest valid key. ``known``:
    ``_known_keys(config_name)``, when the caller checks many configs (it stats every config file)."""
    known = _known_keys(config_name) if known is None else known
    for key in cfg.keys():
        if key not in known:
            close = difflib.get_close_matches(str(key), sorted(known), n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"valid: {', '.join(sorted(known))}"
            raise UserError(f"unknown config key {key!r}; {hint}")


def _known_keys(config_name: str) -> frozenset[str]:
    """The root config's keys and the group names, remembered like :func:`hydra_config` (an edited config.yaml
    is composed again in the same process)."""
    root = _KNOWN_ROOTS.get(composition_key((), config_name),
                            lambda: _compose([], config_name, return_hydra_config=False))
    return frozenset(root.keys()) | set(GROUPS)


_KNOWN_ROOTS = RememberedCompositions(size=8)


def _compose(overrides: list[str], config_name: str, *, return_hydra_config: bool) -> DictConfig:
    try:
        with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3", job_name="xaibench"):
            return compose(config_name=config_name, overrides=overrides, return_hydra_config=return_hydra_config)
    except KeyError as error:  # Hydra's os.environ[name] for hydra.job.env_copy
        refusal = env_copy_error(error)
        if refusal is None:
            raise
        raise refusal from None
    except MissingConfigException as error:
        if f"primary config '{config_name}'" not in str(error):
            raise _composition_error(error, overrides, config_name) from None
        raise UserError(f"--config-name {config_name}: no {config_name}.yaml in xaibench's configs ({conf_dir()}) "
                        f"or the hydra.searchpath folders; leave --config-name out (the suite's config.yaml), or add "
                        f"your folder with hydra.searchpath=[file:///abs/path/to/conf]") from None
    except (HydraException, OmegaConfBaseException, ValueError) as error:
        raise _composition_error(error, overrides, config_name) from None


def _composition_error(error: Exception, overrides: list[str], config_name: str) -> UserError:
    """One line for what Hydra or OmegaConf refused while composing ``overrides``."""

    def without_it() -> DictConfig:  # the config the override failed on: the others composed (error path only)
        key = _unknown_key(error)
        rest = [o for o in overrides if o.split("=", 1)[0].lstrip("+~") != key]
        with initialize_config_dir(config_dir=str(conf_dir()), version_base="1.3", job_name="xaibench"):
            return compose(config_name=config_name, overrides=rest, return_hydra_config=True)

    return UserError(_override_error(error, without_it))
