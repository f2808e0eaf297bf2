"""What the Markdown report, the terminal's lines and the JSON verdict of a ``Comparison`` all say: findings
counted by kind, a finding's direction, the pull request's baseline refresh, whether the changes can become the
baseline, and the command that makes them so."""
from __future__ import annotations

import shlex

from xaibench.results.compare.findings import KINDS, Comparison, Finding


def refresh_of(context: dict | None) -> dict:
    """``--previous-baseline``'s outcome in the context (``state``, ``previous``, a refresh's ``comparison``)."""
    return (context or {}).get("refresh") or {}


def counts(comparison: Comparison) -> dict[str, int]:
    """The comparison's findings counted by kind, every kind in ``KINDS`` order (zeros included)."""
    return {kind: len(comparison.of_kind(kind)) for kind in KINDS}


def direction(finding: Finding) -> str:
    """``better`` or ``worse`` (or the direction the finding records)."""
    return finding.details.get("direction") or ("better" if finding.kind == "improved" else "worse")


def acceptable(comparison: Comparison) -> bool:
    """Whether anything changed that a baseline refresh would accept (changes passed as noise are not that)."""
    return any(f.kind != "unconfirmed" and f.details.get("would_be") != "unconfirmed" for f in comparison.findings)


def stale(context: dict | None) -> bool:
    """Whether the current sweep folder is stale, compared under ``--allow-stale`` (``config_check.ConfigCheck``)."""
    config = (context or {}).get("config")
    return config is not None and config.state == "stale"


def has_errors(comparison: Comparison) -> bool:
    """Whether a cell or metric now ends in error (such rows cannot become a baseline)."""
    return any(f.details.get("after") == "error" for f in comparison.of_kind("status"))


def update_command(baseline: str, current: str, command: str = "") -> str:
    """The command that makes ``current`` the new baseline (with its provenance); ``command``: the one that produced
    the current table (the baseline's provenance records the one that produced it), else a placeholder."""
    produced_by = shlex.quote(command) if command else "'<the command that produced the current table>'"
    return (f"xaibench compare {shlex.quote(str(baseline))} {shlex.quote(str(current))} --update-baseline "
            f"--command {produced_by}")


def baseline_command(context: dict | None) -> str:
    """The command that produces the current table, for the ``--update-baseline`` hint: the one the baseline's
    provenance records as having produced it, else the one the current sweep folder's ``sweep.json`` records (a
    baseline made without ``--command``: the hint showed a placeholder although the sweep knew its command); ""
    if neither."""
    recorded = str(((context or {}).get("baseline") or {}).get("command") or "")
    config = (context or {}).get("config")
    return recorded or str(getattr(config, "command", "") or "")


RUN_ONLY = ("store_dir=", "+store_dir=", "results_dir=", "+results_dir=", "hydra.searchpath=")  # where, not what


def other_sweep_command(context: dict | None) -> str:
    """The current sweep's recorded command where the baseline's provenance records another one (beyond where it
    ran: its store, results folder and searchpath, which name paths of the machine), else "". The update hint
    passes the baseline's command to ``--command``: after a change to the sweep's own command line (another method
    list, here ``method=sal_signed,ig_cheap``), that would record in the new baseline a command that does not make
    it (ciuser25)."""
    recorded = str(((context or {}).get("baseline") or {}).get("command") or "")
    ran = str(getattr((context or {}).get("config"), "command", "") or "")
    if not recorded or not ran or ran.startswith("xaibench.run("):
        return ""
    return ran if _what(recorded) != _what(ran) else ""


def _what(command: str) -> list[str] | None:
    """A command line's words but those of ``RUN_ONLY`` and a trailing ``(...)`` note; None if it cannot be split."""
    try:
        words = shlex.split(command)
    except ValueError:
        return None
    kept, placeholder = [], False  # store_dir=<fresh temporary store> unquoted (the CI script's) is three words
    for word in words:
        if placeholder:
            placeholder = ">" not in word
        elif word.startswith("("):
            break
        elif word.startswith(RUN_ONLY):
            placeholder = "=<" in word and ">" not in word
        else:
            kept.append(word)
    return sorted(kept)
