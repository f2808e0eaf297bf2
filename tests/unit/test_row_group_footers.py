"""A Parquet file read a row group at a time, each with a footer of that row group alone
(``collect.row_group_footers``): the same metadata for the group, the same rows, and the file's own footer where
it cannot be cut."""
import struct

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from xaibench.results.collect.row_group_footers import footer_layout, row_group_files


def _table(rows: int) -> pa.Table:
    """Texts (some missing, some long), numbers, booleans and a list column, with pandas-like file metadata."""
    rng = np.random.default_rng(0)
    text = [None if i % 11 == 3 else f"{'abc' * (i % 40)}-{i}" for i in range(rows)]
    table = pa.table({"model": np.repeat([f"m{i}" for i in range(rows // 10 + 1)], 10)[:rows], "text": text,
                      "value": rng.normal(size=rows), "seed": np.arange(rows) % 3,
                      "ok": np.arange(rows) % 2 == 0, "sizes": [list(range(i % 4)) for i in range(rows)]})
    return table.replace_schema_metadata({b"note": b"kept"})


@pytest.mark.parametrize("group_rows", [7, 1000])  # 22 row groups (a long list header), one row group
def test_each_row_group_is_read_with_a_footer_of_its_own_and_gives_the_same_rows(tmp_path, group_rows):
    table = _table(150)
    path = tmp_path / "t.parquet"
    pq.write_table(table, path, row_group_size=group_rows)
    whole = pq.ParquetFile(path)
    opened = list(row_group_files(path))
    assert len(opened) == whole.metadata.num_row_groups == -(-150 // group_rows)
    for group, (file, index) in enumerate(opened):
        assert index == 0 and file.metadata.num_row_groups == 1
        assert file.metadata.num_rows == whole.metadata.row_group(group).num_rows
        assert file.metadata.row_group(0).to_dict() == whole.metadata.row_group(group).to_dict()
        assert file.schema_arrow.equals(whole.schema_arrow, check_metadata=True)
        assert file.read_row_group(0).equals(whole.read_row_group(group))
        batches = list(file.iter_batches(batch_size=3, row_groups=[0], columns=["model", "value"]))
        assert pa.Table.from_batches(batches).equals(whole.read_row_group(group, columns=["model", "value"]))
    assert pa.concat_tables(file.read_row_group(0) for file, _ in opened).equals(table)


def test_a_footer_that_cannot_be_cut_is_read_whole(tmp_path, monkeypatch):
    """An encrypted footer ("PARE") or bytes that are not the FileMetaData the walk knows: no layout, and
    ``row_group_files`` reads the file with its own footer (a file that is not Parquet then says why)."""
    from xaibench.results.collect import row_group_footers

    encrypted, garbage, table = tmp_path / "e.parquet", tmp_path / "g.parquet", _table(30)
    encrypted.write_bytes(b"PAR1" + bytes(20) + struct.pack("<i", 20) + b"PARE")
    garbage.write_bytes(b"PAR1" + b"\xff" * 20 + struct.pack("<i", 20) + b"PAR1")
    assert footer_layout(encrypted) is None and footer_layout(garbage) is None
    with pytest.raises(OSError, match="thrift"):
        row_group_files(garbage)
    path = tmp_path / "t.parquet"
    pq.write_table(table, path, row_group_size=7)
    assert footer_layout(path) is not None
    monkeypatch.setattr(row_group_footers, "_layout", lambda source: None)  # as for a footer not cut
    opened = list(row_group_files(path))
    assert [index for _, index in opened] == list(range(5)) and opened[0][0].metadata.num_row_groups == 5
    assert pa.concat_tables(file.read_row_group(index) for file, index in opened).equals(table)
