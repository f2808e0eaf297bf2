"""Results schema versions: ``compare`` reads a table of an older version whose newer columns only measure the
run (``schema.MEASUREMENTS_ADDED``) and refuses the others."""
from __future__ import annotations

import pytest

from tests.unit.test_compare import BASE, DEFAULT, table
from xaibench.errors import UserError
from xaibench.results.compare import compare_tables


def test_a_schema_v3_table_compares_with_a_v4_one_and_older_ones_are_refused(tmp_path):
    """v4 only added the measurement columns ``model_device`` and ``oom_backoffs``: a v3 baseline (without them) is
    read as v4 with the device unknown and compares value for value, even with ``strict_changes``; v2 (before
    v3's ``explain_device``, not listed as comparable) must be regenerated."""
    from xaibench.results.compare.tables import load_results

    current = table({("saliency", "m"): list(BASE)}, model_device="cpu", cell_key="v4key")
    old = current.drop(columns=["model_device", "oom_backoffs"]).assign(schema_version=3, cell_key="v3key")
    old.to_parquet(tmp_path / "v3.parquet")
    baseline = load_results(tmp_path / "v3.parquet", "baseline")
    assert set(baseline["model_device"]) == {""} and set(baseline["schema_version"]) == {3}
    comparison = compare_tables(baseline, current, DEFAULT, strict_changes=True)
    assert comparison.exit_code == 0 and not comparison.findings
    old.assign(schema_version=2).to_parquet(tmp_path / "v2.parquet")
    with pytest.raises(UserError, match="has results schema version 2, this xaibench reads version 4; regenerate"):
        load_results(tmp_path / "v2.parquet", "baseline")
    current.drop(columns=["model_device"]).to_parquet(tmp_path / "broken_v4.parquet")  # v4 must have it
    with pytest.raises(UserError, match="lacks columns: model_device"):
        load_results(tmp_path / "broken_v4.parquet", "current")
