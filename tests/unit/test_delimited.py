"""Reading a user's delimited table with a declared separator: a one-column read names the option that reads it."""
from __future__ import annotations

import pandas as pd
import pytest

from xaibench.data.user.delimited import read_delimited
from xaibench.errors import UserError


@pytest.fixture
def frame():
    return pd.DataFrame({"age": [41.5, 38.0, 46.25], "minutes": [9.5, 2.25, 0.5], "bought": ["yes", "no", "yes"]})


def test_a_comma_file_read_with_a_semicolon_names_the_comma(tmp_path, frame):
    """``"dataset.sep=';'"`` on a plain CSV read one column 'age,minutes,bought'; the run then stopped on
    "target column 'bought' not in the file; columns: age,minutes,bought", which lists the very column asked for."""
    path = tmp_path / "shop.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(UserError, match=r"reads as one column 'age,minutes,bought' with sep=';', but its header "
                                        r"holds ',': set \"dataset.sep=','\"$"):
        read_delimited(path, "dataset csv_table", sep=";")


@pytest.mark.parametrize("sep", [";", "\t", "|", ","])
def test_the_declared_separator_reads_every_column(tmp_path, frame, sep):
    path = tmp_path / "shop.csv"
    frame.to_csv(path, sep=sep, index=False)
    read = read_delimited(path, "dataset csv_table", sep="\\t" if sep == "\t" else sep)
    pd.testing.assert_frame_equal(read, frame)
