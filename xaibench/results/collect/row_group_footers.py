"""A Parquet file opened one row group at a time, each with a footer of that row group alone.

pyarrow parses a file's whole footer (``FileMetaData``) and keeps it while any row group is read: 37 KB a row group
for the results schema's 43 columns with statistics, 3.6 MB at 10,000 cells (96 row groups), and it has no way to
subset it. :func:`row_group_files` walks the footer's bytes once (Thrift compact protocol, as the Parquet format
writes it), notes where each ``RowGroup`` lies, and opens each row group as a ``pq.ParquetFile`` whose metadata is
the footer with that ``RowGroup`` only (and ``num_rows`` its rows): the column chunks' offsets are absolute, so
what is read is the same bytes, decoded the same way. An encrypted footer, or one this walk does not understand,
gives None (the caller reads the file as it is). The walk and every read go through one open handle: a table that
a collect replaces meanwhile (atomically) is read whole from the file walked, not the new file at the old offsets.
"""
from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.parquet as pq

_MAGIC = b"PAR1"  # a plain footer ("PARE": encrypted, not cut)
# Thrift compact protocol type ids (parquet.thrift is written with it):
_TRUE, _FALSE, _BYTE, _I16, _I32, _I64, _DOUBLE, _BINARY, _LIST, _SET, _MAP, _STRUCT = range(1, 13)
_NUM_ROWS, _ROW_GROUPS = 3, 4  # FileMetaData's field ids
_ROW_GROUP_ROWS = 3  # RowGroup's num_rows


@dataclass(frozen=True)
class FooterLayout:
    """Where a footer's parts lie, as offsets into its Thrift bytes (``start``: the footer's offset in the file).

    ``rows``: the ``num_rows`` value's byte span; ``groups``: the ``row_groups`` list header's span; ``spans``: each
    ``RowGroup``'s span, in the file's order; ``group_rows``: each one's rows."""

    start: int
    length: int
    rows: tuple[int, int]
    groups: tuple[int, int]
    spans: tuple[tuple[int, int], ...]
    group_rows: tuple[int, ...]


def row_group_files(path: str | os.PathLike[str]) -> Iterator[tuple[pq.ParquetFile, int]]:
    """(file, row group index in it) for each row group of the Parquet file at ``path``, in order: a
    ``pq.ParquetFile`` of that row group alone (index 0; its metadata ~40 KB instead of the whole footer), opened
    when the previous one is done with; the whole file and each index where the footer cannot be cut (encrypted,
    or not the layout the walk knows). The walk and every read go through one handle, opened here: a file
    replaced meanwhile (a collect writing the table again, atomically) is still read whole from the file walked,
    never a row group of each (each ``ParquetFile`` holds the handle, closed with the last)."""
    source = pa.OSFile(os.fspath(path))
    layout = _layout(source)
    if layout is None:
        file = pq.ParquetFile(source)
        return ((file, group) for group in range(file.metadata.num_row_groups))
    return ((file, 0) for file in _opened(source, layout))


def footer_layout(path: str | os.PathLike[str]) -> FooterLayout | None:
    """The layout of the file's footer; None for an encrypted or unexpected footer (an unreadable file raises
    ``OSError``)."""
    with pa.OSFile(os.fspath(path)) as source:
        return _layout(source)


def _layout(source: pa.NativeFile) -> FooterLayout | None:
    """``footer_layout`` of the open file ``source``."""
    size = source.size()
    if size < 12:
        return None
    length, magic = struct.unpack("<i4s", source.read_at(8, size - 8))
    if magic != _MAGIC or not 0 < length <= size - 12:
        return None
    footer = source.read_at(length, size - 8 - length)
    try:
        return _walk(footer, size - 8 - length)
    except (IndexError, ValueError):  # not the compact FileMetaData this walk expects: not cut
        return None


def one_group_footer(footer: bytes, layout: FooterLayout, group: int) -> bytes:
    """The Thrift bytes of ``footer`` with only its ``group``-th ``RowGroup`` (and that group's ``num_rows``)."""
    start, end = layout.spans[group]
    return _joined(_around(footer, layout), footer[start:end], layout.group_rows[group])


def _opened(source: pa.NativeFile, layout: FooterLayout) -> Iterator[pq.ParquetFile]:
    around = _around(source.read_at(layout.length, layout.start), layout)  # the footer less its row groups
    for group, (start, end) in enumerate(layout.spans):  # the row group's bytes, read when it is opened
        cut = _joined(around, source.read_at(end - start, layout.start + start), layout.group_rows[group])
        metadata = pq.read_metadata(pa.BufferReader(_MAGIC + cut + struct.pack("<i", len(cut)) + _MAGIC))
        del cut
        yield pq.ParquetFile(source, metadata=metadata)


def _around(footer: bytes, layout: FooterLayout) -> tuple[bytes, bytes, bytes]:
    """The footer's bytes before ``num_rows``' value, between it and the row group list, and after that list."""
    (rows_at, rows_end), (list_at, list_end) = layout.rows, layout.groups
    return footer[:rows_at], footer[rows_end:list_at], footer[list_end:]


def _joined(around: tuple[bytes, bytes, bytes], group: bytes, rows: int) -> bytes:
    """A footer of one row group: ``around``'s parts with ``rows`` as ``num_rows`` and a list of ``group``."""
    before, between, after = around
    return b"".join([before, _varint(_zigzag(rows)), between, bytes([0x10 | _STRUCT]), group, after])


def _walk(footer: bytes, start: int) -> FooterLayout | None:
    """Read the FileMetaData struct's fields, noting ``num_rows`` and each ``RowGroup``'s span."""
    reader, field, rows, groups = _Reader(footer), 0, None, None
    spans, group_rows = [], []
    while True:
        kind, field = reader.field_header(field)
        if kind == 0:
            break
        if field == _NUM_ROWS and kind == _I64:
            at = reader.at
            reader.varint()
            rows = (at, reader.at)
        elif field == _ROW_GROUPS and kind == _LIST:
            at = reader.at
            size, element = reader.list_header()
            if element != _STRUCT:
                return None
            for _ in range(size):
                begin = reader.at
                group_rows.append(reader.struct_field(_ROW_GROUP_ROWS))
                spans.append((begin, reader.at))
            groups = (at, reader.at)
        else:
            reader.skip(kind)
    if rows is None or groups is None or rows[1] > groups[0] or None in group_rows or reader.at != len(footer):
        return None  # num_rows is written before the row groups (field order) by every Thrift writer
    return FooterLayout(start, len(footer), rows, groups, tuple(spans), tuple(group_rows))


class _Reader:
    """A cursor over Thrift compact-protocol bytes that skips values (no value is built but the few asked for)."""

    def __init__(self, data: bytes):
        self.data, self.at = data, 0

    def byte(self) -> int:
        value = self.data[self.at]
        self.at += 1
        return value

    def varint(self) -> int:
        value = shift = 0
        while True:
            byte = self.byte()
            value |= (byte & 0x7F) << shift
            if byte < 0x80:
                return value
            shift += 7
            if shift > 70:
                raise ValueError("varint too long")

    def field_header(self, previous: int) -> tuple[int, int]:
        """(type, field id) of the next field; type 0 at the struct's end."""
        byte = self.byte()
        kind, delta = byte & 0x0F, byte >> 4
        if kind == 0:
            return 0, previous
        return kind, previous + delta if delta else _unzigzag(self.varint())

    def list_header(self) -> tuple[int, int]:
        byte = self.byte()
        size = byte >> 4
        return (self.varint() if size == 15 else size), byte & 0x0F

    def struct_field(self, wanted: int) -> int | None:
        """Skip a struct, returning its integer field ``wanted`` (None if absent)."""
        field, found = 0, None
        while True:
            kind, field = self.field_header(field)
            if kind == 0:
                return found
            if field == wanted and kind in (_I16, _I32, _I64):
                found = _unzigzag(self.varint())
            else:
                self.skip(kind)

    def skip(self, kind: int) -> None:
        if kind in (_TRUE, _FALSE):  # a struct field's bool is in its header
            return
        if kind == _BYTE:
            self.at += 1
        elif kind in (_I16, _I32, _I64):
            self.varint()
        elif kind == _DOUBLE:
            self.at += 8
        elif kind == _BINARY:
            size = self.varint()
            self.at += size
        elif kind in (_LIST, _SET):
            size, element = self.list_header()
            for _ in range(size):
                self._skip_element(element)
        elif kind == _MAP:
            size = self.varint()
            if size:
                types = self.byte()
                for _ in range(size):
                    self._skip_element(types >> 4)
                    self._skip_element(types & 0x0F)
        elif kind == _STRUCT:
            self.struct_field(-1)
        else:
            raise ValueError(f"unknown Thrift type {kind}")
        if self.at > len(self.data):
            raise IndexError("past the footer's end")

    def _skip_element(self, kind: int) -> None:
        if kind in (_TRUE, _FALSE):  # a collection's bool is a byte
            self.at += 1
        else:
            self.skip(kind)


def _zigzag(value: int) -> int:
    return (value << 1) ^ (value >> 63)


def _unzigzag(value: int) -> int:
    return (value >> 1) ^ -(value & 1)


def _varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)
