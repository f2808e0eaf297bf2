"""What ``xaibench report`` leaves in its output folder when it is rerun there."""
from __future__ import annotations

from xaibench.commands.report import FIGURE_LIST, _remove_stale_figures


def test_a_rerun_removes_the_figures_it_no_longer_draws_and_nothing_else(tmp_path):
    # A rerun after the sweep changed left the earlier report's cd_stability.png (a CD diagram the Friedman test no
    # longer supports) and a dropped method's gallery beside the new report, whose note said "not drawn".
    figures = tmp_path / "figures"
    figures.mkdir()
    first = [figures / n for n in ("cd_all.png", "cd_all.pdf", "cd_stability.png", "cd_stability.pdf")]
    for path in [*first, figures / "my_sketch.png"]:
        path.write_bytes(b"png")
    (tmp_path / "report.md").write_text("tables")
    assert _remove_stale_figures(tmp_path, [tmp_path / "report.md", *first]) == []  # first report: nothing stale
    assert (figures / FIGURE_LIST).read_text().splitlines() == sorted(p.name for p in first)

    second = first[:2]
    removed = _remove_stale_figures(tmp_path, [tmp_path / "report.md", *second])
    assert removed == [figures / "cd_stability.pdf", figures / "cd_stability.png"]
    assert sorted(p.name for p in figures.iterdir()) == [FIGURE_LIST, "cd_all.pdf", "cd_all.png", "my_sketch.png"]
    assert (figures / FIGURE_LIST).read_text().splitlines() == ["cd_all.pdf", "cd_all.png"]
    assert (tmp_path / "report.md").exists()  # only figures an earlier report listed are removed


def test_a_tampered_list_cannot_remove_files_outside_the_figures_folder(tmp_path):
    figures = tmp_path / "figures"
    figures.mkdir()
    (tmp_path / "keep.txt").write_text("mine")
    (figures / FIGURE_LIST).write_text("../keep.txt\n/etc/hostname\n")
    assert _remove_stale_figures(tmp_path, []) == []
    assert (tmp_path / "keep.txt").exists()
