"""The README's quickstart block is what the README's first command prints.

The block went stale once (the console began listing controls last and the README still showed them
alphabetically): nothing compared it with the real output. This test runs the quickstart as the README says
(cold, a fresh store) and compares the printed table with the README's block: every word and every rank exactly,
every number within 2e-3 (the same config differs around 1e-3 on another CPU's BLAS kernels; the table prints three
decimals).
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import run_cli

REPO = Path(__file__).resolve().parents[2]
NUMBER = re.compile(r"^[\[(]?(-?\d+\.\d+)[\],)]*$")
TOLERANCE = 2e-3


def readme_block() -> list[str]:
    """The README's quickstart table: the first fenced block that shows the quickstart's metric columns."""
    blocks = re.findall(r"^```[^\n]*\n(.*?)^```", (REPO / "README.md").read_text(), flags=re.S | re.M)
    block = next(text for text in blocks if "faithfulness_correlation ↑" in text)
    return block.rstrip("\n").splitlines()


def differences(expected: list[str], printed: list[str]) -> list[str]:
    """Where two printed tables differ: a line each, with its number; numbers within ``TOLERANCE`` agree."""
    found = []
    if len(expected) != len(printed):
        found.append(f"{len(expected)} lines in the README, {len(printed)} printed")
    for number, (want, got) in enumerate(zip(expected, printed), 1):
        want_words, got_words = want.split(), got.split()
        same = len(want_words) == len(got_words) and all(
            _agree(a, b) for a, b in zip(want_words, got_words))
        if not same:
            found.append(f"line {number}:\n  README : {want}\n  printed: {got}")
    return found


def _agree(want: str, got: str) -> bool:
    a, b = NUMBER.match(want), NUMBER.match(got)
    if a and b:
        return abs(float(a.group(1)) - float(b.group(1))) <= TOLERANCE and want[0] == got[0]
    return want == got


def test_the_tolerance_reads_numbers_inside_brackets_and_nothing_else():
    assert _agree("[0.983,", "[0.984,") and _agree("0.994]", "0.995]") and not _agree("[0.983,", "[0.990,")
    assert not _agree("#1", "#2") and not _agree("saliency", "random") and not _agree("0.989", "[0.989,")
    assert differences(["a 0.100 #1"], ["a 0.101 #1"]) == []
    assert differences(["a 0.100 #1"], ["a 0.101 #2"]) == ["line 1:\n  README : a 0.100 #1\n  printed: a 0.101 #2"]


@pytest.mark.slow
def test_the_readme_quickstart_block_is_what_the_quickstart_prints(tmp_path):
    done = run_cli(["-m", "experiment=quickstart", f"store_dir={tmp_path / 'store'}"], cwd=tmp_path, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    expected = readme_block()
    lines = done.stdout.rstrip("\n").splitlines()
    start = next(i for i, line in enumerate(lines) if "faithfulness_correlation ↑" in line)
    printed = lines[start:start + len(expected)]
    assert not differences(expected, printed), "\n".join(differences(expected, printed))
    assert printed[-1] == "12 cells (3 not_applicable, 9 ok); 873 rows -> results/runs/quickstart/table.parquet"
