"""A sweep over ``explain_output`` keeps every cell's rows: cells that differ only in the explained output score
different attributions, so collecting must not fold them into one (it kept only the first before)."""
from __future__ import annotations

import torch

import xaibench
from xaibench.results.collect import combine_cells


def test_cells_that_differ_only_in_explain_output_are_all_kept():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 3))
    x, y = torch.randn(4, 4), torch.tensor([0, 1, 2, 0])
    frames = [xaibench.evaluate(net, x, y, xaibench.explain(net, x, method="saliency", explain_output=kind),
                                metrics=["sparseness"], method="saliency", explain_output=kind)
              for kind in ("log_odds", "probability")]
    table = combine_cells(frames)
    assert len(table) == 8 and sorted(table["explain_output"].unique()) == ["log_odds", "probability"]
    by_kind = table.set_index(["explain_output", "sample_id"])["value"]
    assert not by_kind["log_odds"].equals(by_kind["probability"])
