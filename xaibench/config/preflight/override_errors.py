"""One line for an override or config that Hydra or OmegaConf refused, saying what is wrong and how to fix it."""
from __future__ import annotations

import difflib
import re

from omegaconf import DictConfig, OmegaConf


def _unknown_key(error: BaseException) -> str | None:
    """The key of Hydra's "Could not override 'method.n_step'" (a key the config does not have), else None."""
    found = re.match(r"Could not override '([^']+)'", str(error))
    return found.group(1) if found else None


def _override_error(error: BaseException, config) -> str:
    """One line for an override Hydra or OmegaConf refused, saying what is wrong with it.

    Hydra's own lines send the user the wrong way: ``Could not override 'n_sample'. To append to your config use
    +n_sample=3`` (the fix is ``n_samples``, and ``+n_sample`` is refused next) and ``Error merging override
    hydra.launcher.n_jobs=abc`` (the reason, a value of the wrong type, is in the chained error). ``config()``: the
    config the override applies to, for the keys it does have (called only for an unknown key).
    """
    key = _unknown_key(error)
    if key is None:
        cause = error.__cause__
        merging = re.match(r"Error merging override (\S+)", str(error))
        if merging and cause is not None and re.match(r"\+[^+]", merging.group(1)) and _is_missing_value(cause):
            return _added_key_is_set(merging.group(1))
        if merging and cause is not None:
            return f"{merging.group(1)}: {_first_line(cause)}"
        return _first_line(error)
    parent, _, leaf = key.rpartition(".")
    keys = _keys_under(config, parent)
    if leaf in keys:  # the key exists: its new value adds keys to a section that Hydra locks (struct)
        added = re.search(r"Key '([^']+)' is not in struct", str(error.__cause__ or ""))
        append = re.search(r"To append to your config use (\S+)", str(error))
        return (f"{key} has no key {added.group(1) if added else '...'!r} yet; add keys to it with a '+': "
                f"{append.group(1) if append else '+' + key + '=...'} (merged with its keys: "
                f"{', '.join(_keys_under(config, key)) or 'none'})")
    close = difflib.get_close_matches(leaf, keys, n=1)
    if close:
        return f"unknown config key {key!r}; did you mean {'.'.join(filter(None, [parent, close[0]]))!r}?"
    if parent == "hydra.launcher" and not keys:
        return f"unknown config key {key!r}: the basic launcher takes no settings; choose one that does first, " \
               f"e.g. hydra/launcher=joblib or hydra/launcher=slurm"
    message = f"unknown config key {key!r}" + (f"; {parent or 'the config'} has: {', '.join(keys)}" if keys else "")
    if key.startswith("hydra.") and _is_plain_dict(config, parent):  # additional_parameters, setup's env, ...
        message += f"; add a key with a '+': +{key}=<value>"
    elif parent and not keys and _is_plain_dict(config, parent):  # model.kwargs: {} (your class's arguments)
        message += f": {parent} holds no keys yet; add one with a '+': +{key}=<value>"
    return message


def _is_missing_value(cause: BaseException) -> bool:
    """OmegaConf's "Missing mandatory value" while Hydra resolved the key's current value to see whether a ``+``
    adds it: the key is set, to an interpolation known only when a job runs (``hydra.sweep.subdir``'s
    ``${hydra.job.num}``)."""
    from omegaconf.errors import InterpolationToMissingValueError, MissingMandatoryValue

    return isinstance(cause, (InterpolationToMissingValueError, MissingMandatoryValue))


def _added_key_is_set(override: str) -> str:
    """``+hydra.sweep.subdir=a``: Hydra said "MissingMandatoryValue ... hydra.job.num" (it resolved the value the
    key has); say that the key exists and a '+' adds only new keys."""
    key, _, value = override.lstrip("+").partition("=")
    return (f"{override}: {key} is already set, and a '+' adds only keys the config lacks; change it without the "
            f"'+': {key}={value}")


def _is_plain_dict(config, parent: str) -> bool:
    """Whether ``parent`` is a dict that takes any key (``hydra.launcher.additional_parameters``), not a section
    with fixed settings (``hydra.launcher``: a dataclass)."""
    try:
        node = OmegaConf.select(config(), parent) if parent else None
    except Exception:  # noqa: BLE001 - the hint is a courtesy
        return False
    return isinstance(node, DictConfig) and OmegaConf.get_type(node) is dict


def _keys_under(config, parent: str) -> list[str]:
    """The keys of ``config()`` at ``parent`` ('' for the top: the job's keys, Hydra's settings only under
    ``hydra``), for suggestions; [] when there is no such section."""
    try:
        node = OmegaConf.select(config(), parent) if parent else config()
    except Exception:  # noqa: BLE001 - the suggestion is a courtesy; the key is unknown either way
        return []
    if not isinstance(node, DictConfig):
        return []
    return sorted(str(k) for k in node.keys() if not str(k).startswith("_") and (parent or k != "hydra"))


def _first_line(error: BaseException) -> str:
    """Hydra/OmegaConf errors span several lines; keep the informative ones, joined into one."""
    lines = [line.strip() for line in (str(error).strip() or type(error).__name__).splitlines()]
    keep = [line for line in lines if line and not line.startswith(("full_key:", "object_type", "reference_type"))]
    return " ".join(keep[:3])


def _odd_character(parser, overrides) -> str | None:
    """The line for an override that fails Hydra's grammar because of what a user cannot see: an empty argument (a
    quoted shell variable that is unset), a leading space, a non-ASCII character outside quotes (a no-break space or
    a full-width digit pasted from a web page or PDF, an accented key). Hydra said "LexerNoViableAltException:
    seed=1 ^", pointing at nothing, or "mismatched input '<EOF>'". None: no such override."""
    import unicodedata

    from hydra.errors import HydraException

    for text in overrides:
        if not text.strip():
            return f"an empty override {text!r} (a quoted shell variable that is unset?); drop it"
        odd = next((i for i, char in enumerate(text) if not char.isascii() or (i == 0 and char.isspace())), None)
        if odd is None:
            continue
        try:
            parser.parse_overrides([text])
            continue  # quoted (sweep_id='é'): the grammar takes it; a later check names what is wrong with it
        except HydraException:
            pass
        char = text[odd]
        if char.isspace():
            fix = "retype it (pasted from a web page or PDF?)"
        elif odd < text.find("="):
            fix = "config keys are ASCII names: retype the key"
        else:
            fix = "retype it (pasted from a web page or PDF?), or quote the value: key='value'"
        return (f"override {text!r}: character {odd + 1} is {unicodedata.name(char, 'a control character')} "
                f"(U+{ord(char):04X}), which Hydra's override grammar does not take there; {fix}")
    return None


def _value_to_quote(parser, overrides) -> str | None:
    """The line for a plain value Hydra's grammar reads only quoted (``dataset.sep=;``, ``dataset.path=~/t.csv``,
    ``sweep_id=a&b``): Hydra said "LexerNoViableAltException: dataset.sep=; ^" with a general hint; this names the
    override and the exact quoting. Values with brackets, commas or quotes (lists, sweeps, a half-quoted value) are
    left to that hint: quoting them whole would change what they mean. None: no such override."""
    from hydra.errors import HydraException

    for text in overrides:
        key, equals, value = text.partition("=")
        if not equals or not value or any(char in value for char in "[]{}(),'\""):
            continue
        try:
            parser.parse_overrides([text])
            continue
        except HydraException:
            pass
        try:
            parser.parse_overrides([f'{key}="{value}"'])
        except HydraException:
            continue
        return (f"{text}: Hydra's override grammar reads {value!r} only quoted; write '{key}=\"{value}\"' (the "
                f"single quotes keep the shell from removing the double ones)")
    return None
