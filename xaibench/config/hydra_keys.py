"""Refuse a key added to Hydra's own settings (``+hydra.bogus=1``) that Hydra would accept and then ignore.

Hydra's sections (``hydra``, ``hydra.job``, ``hydra.launcher`` of the chosen launcher, ...) are dataclasses with
fixed fields: ``hydra.launcher.n_job=2`` is refused by Hydra (no such field), but with a ``+`` (``+hydra.bogus=1``,
``+hydra.launcher.n_job=2``) Hydra adds the key and the run goes on without it, the setting the user meant never
applied. Sections that are plain dicts take any key and are left alone: ``+hydra.job.env_set.X=1`` (an environment
variable), ``+hydra.launcher.additional_parameters.X=...`` (Slurm's), ``+hydra.job_logging.root.level=DEBUG``, and
a key under a section that is unset (``hydra.sweeper.params``: null until given).
"""
from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from xaibench.errors import UserError


def check_hydra_settings(parsed: Sequence, compose: Callable[[list[str]], DictConfig]) -> None:
    """Refuse ``+hydra.<key>`` / ``++hydra.<key>`` where ``<key>`` is not a field of a fixed Hydra section, and a
    ``hydra.*`` override that sets keys inside a section that is null (``hydra.sweeper.params``), where OmegaConf
    fails with a traceback.

    Args:
        parsed: the command line's overrides as Hydra parsed them (``OverridesParser.parse_overrides``), sweep
            overrides left out.
        compose: composes a list of override strings into the config with its ``hydra`` section. Called once, and
            only when some override sets a ``hydra.`` key: with the others (the launcher chosen, the search path).

    Raises:
        UserError: the first such override, with the closest existing key or the section's keys.
    """
    settings = [o for o in parsed if not o.is_delete() and o.package is None
                and str(o.key_or_group).startswith("hydra.") and str(o.key_or_group) != "hydra.searchpath"]
    if not settings:
        return
    reference = compose([o.input_line for o in parsed if o not in settings])
    for override in settings:
        key = str(override.key_or_group)
        _check_not_into_null(reference, key, override.value())
        if (override.is_add() or override.is_force_add()) and not (
                key.startswith("hydra.launcher.") and _launcher_checks_its_settings(reference)):
            _check_key(reference, key)


def _check_not_into_null(config: DictConfig, key: str, value) -> None:
    """``+hydra.sweeper.params.seed=...`` or ``hydra.sweeper.params={seed: ...}``: keys into a null section, which
    OmegaConf's merge fails on with a traceback (AssertionError, AttributeError)."""
    parts, node = key.split("."), config.hydra
    for depth, part in enumerate(parts[1:], start=2):
        if not isinstance(node, DictConfig) or part not in [str(k) for k in node.keys()]:
            return  # unknown keys are _check_key's (added) or Hydra's (changed)
        try:
            node = node[part]
        except OmegaConfBaseException:  # ??? or an interpolation that does not resolve yet: not this check's
            return
        if node is None and (depth < len(parts) or isinstance(value, dict)):
            section = ".".join(parts[:depth])
            hint = ("sweep with the overrides themselves (-m seed=0,1), or declare hydra.sweeper.params in an "
                    "experiment config (conf/experiment/)" if section == "hydra.sweeper.params" else
                    "set it in a config file (an experiment config, conf/experiment/)")
            where = section if section == key else f"{key}: {section}"
            raise UserError(f"{where} is null, and Hydra cannot set keys inside a null section from the command "
                            f"line; {hint}")


def _launcher_checks_its_settings(config: DictConfig) -> bool:
    """Whether the chosen launcher checks its own ``hydra.launcher.*`` (xaibench's Slurm, local and Ray launchers
    have ``check_can_start``, whose refusals name more: ``partitio`` says where other sbatch options go)."""
    from hydra.utils import get_class

    try:
        return hasattr(get_class(str(OmegaConf.select(config, "hydra.launcher._target_"))), "check_can_start")
    except Exception:  # noqa: BLE001 - a launcher that cannot be imported is refused by the pre-flight's launch check
        return True


def _check_key(config: DictConfig, key: str) -> None:
    """Walk ``key`` (``hydra.a.b``) down ``config.hydra``; refuse it where it leaves a section with fixed fields
    (a dataclass)."""
    node, path = config.hydra, ["hydra"]
    for part in key.split(".")[1:]:
        if not isinstance(node, DictConfig) or OmegaConf.get_type(node) is dict:
            return  # a plain dict takes any key; an unset or non-dict section: Hydra composes or refuses it itself
        fields = [str(k) for k in node.keys()]  # with the keys whose value is still ??? (``in`` says no to those)
        if part not in fields:
            _refuse(key, ".".join(path), sorted(k for k in fields if not k.startswith("_")), part,
                    key.split(".")[len(path) + 1:])
        try:
            node, path = node[part], [*path, part]
        except OmegaConfBaseException:  # ??? or an interpolation that does not resolve yet: not this check's
            return


def _refuse(key: str, section: str, fields: list[str], part: str, rest: list[str]) -> None:
    """``part`` is not one of ``fields``, those of ``section``; ``rest``: the key's parts after it."""
    close = difflib.get_close_matches(part, fields, n=1)
    if close:
        meant = ".".join([section, close[0], *rest])
        raise UserError(f"unknown config key {key!r}, which Hydra would ignore; did you mean {meant!r}?")
    if section == "hydra.launcher" and not fields:
        raise UserError(f"unknown config key {key!r}: the basic launcher takes no settings; choose one that does "
                        f"first, e.g. hydra/launcher=joblib or hydra/launcher=slurm")
    raise UserError(f"unknown config key {key!r}, which Hydra would ignore; {section} has: "
                    f"{', '.join(fields) or 'no settings'}")
