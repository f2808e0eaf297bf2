"""Frames put aside in an anonymous temporary file and read back in order (``TempFrames``): what the summary
keeps of the chunks that have passed, not in memory."""
from __future__ import annotations

import pickle
import tempfile
from collections.abc import Iterator

import pandas as pd


class TempFrames:
    """Frames put aside in an anonymous temporary file (pickled: dtypes, objects and column index as they were)
    and taken back in order. While a table streams, the summary of what has passed waits there, not in memory:
    120,000 rows (10,000 cells x 20 metrics) are about 44 MB as frames, which made a sweep's memory grow with its
    cells."""

    def __init__(self) -> None:
        self.file = None  # opened on the first put
        self.count = 0

    def put(self, frame: pd.DataFrame) -> None:
        if self.file is None:
            self.file = tempfile.TemporaryFile(prefix="xaibench-summary-")
        pickle.dump(frame, self.file, protocol=pickle.HIGHEST_PROTOCOL)
        self.count += 1

    def frames(self) -> Iterator[pd.DataFrame]:
        """Every frame put, in order, read back one at a time (again on every call)."""
        position = 0
        for _ in range(self.count):
            if self.file is None:  # closed meanwhile
                return
            self.file.seek(position)  # another reader may have moved it
            frame = pickle.load(self.file)
            position = self.file.tell()
            yield frame

    def close(self) -> None:
        if self.file is not None:
            self.file.close()
        self.file, self.count = None, 0
