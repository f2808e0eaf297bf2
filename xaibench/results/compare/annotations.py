"""GitHub Actions annotations of a verdict (``xaibench compare --github-annotations``): one ``::error`` workflow
command per failing finding, so each shows on the run's summary page and the pull request's checks, not only in
the log.

GitHub shows at most 10 error annotations per step: beyond ``MAX_ANNOTATIONS`` failing findings, the last one says
how many more there are and where they are listed.
"""
from __future__ import annotations

from xaibench.results.compare.findings import Comparison
from xaibench.results.compare.junit import finding_text, xml_safe
from xaibench.results.compare.names import unit_path

MAX_ANNOTATIONS = 10  # error annotations GitHub shows per step


def github_annotations(comparison: Comparison, *, report: str = "") -> list[str]:
    """``::error title=...::...`` lines, one per failing finding (at most ``MAX_ANNOTATIONS``); ``report``: where
    the rest is listed (``--report``), named in the last one when some are left out."""
    failing = [f for f in comparison.findings if f.fails]
    shown = failing if len(failing) <= MAX_ANNOTATIONS else failing[:MAX_ANNOTATIONS - 1]
    lines = []
    for finding in shown:
        names = unit_path(finding.unit)
        title = f"xaibench compare: {finding.kind}" + (f": {names}" if names else "")
        lines.append(f"::error title={_property(title)}::{_data(finding_text(finding, comparison))}")
    if len(shown) < len(failing):
        where = f" (listed in {report} and the JSON verdict)" if report else " (listed by compare without --quiet)"
        lines.append(f"::error title={_property('xaibench compare: more failing findings')}::"
                     f"{_data(f'and {len(failing) - len(shown)} more failing findings{where}')}")
    return lines


def _data(text: str) -> str:
    """A workflow command's message, escaped as the runner unescapes it (``%``, CR, LF), control characters (a
    terminal colour code in an error message) written as ``\\x1b``."""
    return xml_safe(text).replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _property(text: str) -> str:
    """A workflow command's property value (``title=``): the message's escapes plus ``:`` and ``,``."""
    return _data(text).replace(":", "%3A").replace(",", "%2C")
