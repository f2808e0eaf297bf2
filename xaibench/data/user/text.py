"""Raw text from the user's table (a text column and a label column), tokenised by a local tokenizer folder.

The tokenizer is loaded with ``AutoTokenizer.from_pretrained(folder, local_files_only=True)`` (never the Hub), so
the ids are the model's own vocabulary; sequences are padded/truncated to ``max_length`` with the tokenizer's pad
token (the Hugging Face adapter masks padding out of attention). Attributions come per token ``(N, L)``;
:func:`word_attributions` turns them into per-word tables with the text, for display.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd
import torch

from xaibench.data.base import DatasetSpec, make_dataset, unsplit_revision
from xaibench.data.user._common import checked_split, encode_labels, require_path
from xaibench.data.user.encoding import warn_once
from xaibench.data.user.table import read_table
from xaibench.errors import UserError
from xaibench.registry import DATASETS
from xaibench.types import Dataset, Modality, Vocabulary


def load_tokenizer(folder: str | None, what: str) -> Any:
    """A tokenizer from a local folder (``save_pretrained``), with a pad token; ``UserError`` otherwise."""
    path = require_path(folder, what, directory=True) if folder else None
    if path is None:
        raise UserError(f"{what}: no tokenizer folder given; set dataset.tokenizer=<folder>")
    try:
        from transformers import AutoTokenizer
    except ImportError:
        raise UserError(f"{what} needs the transformers package: pip install 'xaibench[hf]'") from None
    from xaibench.models.adapters.huggingface import quiet_transformers

    quiet_transformers()
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    except Exception as error:  # noqa: BLE001 - a folder that is not a tokenizer is the user's
        raise UserError(f"{what}: cannot load a tokenizer from {path}: {' '.join(str(error).split())[:200]}") from None
    if tokenizer.pad_token_id is None:
        raise UserError(f"{what}: the tokenizer in {path} has no pad token; save it with pad_token set")
    return tokenizer


def warn_cut_or_unknown(tokenizer: Any, texts: list[str], max_length: int, what: str) -> None:
    """One warning line each when texts are longer than ``max_length`` tokens (cut: the model never sees the rest)
    and when most of the words are the tokenizer's unknown token (not the model's tokenizer?)."""
    full = tokenizer(texts, truncation=False)["input_ids"]
    lengths = np.array([len(ids) for ids in full])
    cut = lengths > max_length
    if cut.any():
        warn_once(f"{what}: {int(cut.sum())} of {len(texts)} texts are longer than max_length={max_length} tokens (up "
                  f"to {int(lengths.max())}) and are cut to their first {max_length}: the model never sees the rest; "
                  "raise dataset.max_length (at most the model's max_position_embeddings) to keep more")
    unknown, special = tokenizer.unk_token_id, set(tokenizer.all_special_ids) - {tokenizer.unk_token_id}
    tokens = [t for ids in full for t in ids if t not in special]
    if unknown is not None and tokens and np.mean(np.asarray(tokens) == unknown) > 0.5:
        warn_once(f"{what}: {np.mean(np.asarray(tokens) == unknown):.0%} of the tokens of the texts are the "
                  f"tokenizer's unknown token {tokenizer.unk_token!r}: is dataset.tokenizer the model's own tokenizer?")


def tokenizer_vocabulary(tokenizer: Any) -> Vocabulary:
    """The tokenizer's token strings by id (``##ing`` word pieces as they are), for displays; padding id included."""
    tokens = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
    return Vocabulary(tuple(f"#{i}" if t is None else str(t) for i, t in enumerate(tokens)), tokenizer.pad_token_id)


@DATASETS.register("text_csv")
@dataclass(frozen=True)
class TextCsv(DatasetSpec):
    """Token ids ``(N, max_length)`` of a text column, labels from ``target`` (sorted distinct values -> 0..K-1).

    Attributes:
        path: ``.csv``, ``.tsv`` or ``.parquet`` file.
        text_column: the column holding the raw text.
        target: the label column.
        tokenizer: local tokenizer folder (``tokenizer.save_pretrained(folder)``), usually the model's.
        max_length: tokens per sample after padding/truncation (special tokens included).
        id_column: unique sample ids (default: row numbers, ``row-00000``...).
        sep, decimal, thousands: a text file's field separator (default: ``,``; ``.tsv``: tab), decimal mark and
            thousands separator (None: none), as ``csv_table`` reads them.
    """

    modality: ClassVar[Modality] = Modality.TEXT
    path: str | None = None
    text_column: str = "text"
    target: str | None = None
    tokenizer: str | None = None
    max_length: int = 32
    id_column: str | None = None
    sep: str | None = None
    decimal: str = "."
    thousands: str | None = None
    task: Literal["auto", "classification", "regression"] = "auto"  # what the target holds (_common.TASKS)

    def build(self, seed: int) -> Dataset:
        what = f"dataset {self.name}"
        frame = read_table(require_path(self.path, what), what, self.sep, self.decimal, (self.text_column,),
                           self.thousands, only=())  # no column is read as numbers
        for option in ("text_column", "target", "id_column"):
            column = getattr(self, option)
            if option == "target" and not column:
                raise UserError(f"{what}: no target given; set dataset.target=<label column>; columns: "
                                f"{', '.join(map(str, frame.columns))}")
            if (column is not None or option == "target") and column not in frame.columns:
                raise UserError(f"{what}: {option} {column!r} not in the file; columns: "
                                f"{', '.join(map(str, frame.columns))}")
        if self.max_length < 2:
            raise UserError(f"{what}: max_length must be at least 2, got {self.max_length}")
        tokenizer = load_tokenizer(self.tokenizer, what)
        texts = self.texts(frame, what)
        ids = tokenizer(texts, padding="max_length", truncation=True, max_length=self.max_length)["input_ids"]
        warn_cut_or_unknown(tokenizer, texts, self.max_length, what)
        x = np.asarray(ids, dtype=np.int64)
        y, class_names = encode_labels(frame[self.target].to_numpy(), what, self.task,
                                       f"the target column {self.target!r}")
        sample_ids = (frame[self.id_column].astype(str).to_numpy() if self.id_column else
                      np.array([f"row-{i:05d}" for i in range(len(frame))]))
        train, test = checked_split(x, y, sample_ids, test_size=self.test_size, seed=seed, what=what)
        return make_dataset(self.name, self.modality, train, test, n_classes=int(y.max()) + 1,
                            vocab_size=len(tokenizer), x_dtype=torch.int64, class_names=class_names,
                            vocabulary=tokenizer_vocabulary(tokenizer),
                            revision=unsplit_revision(x, y, sample_ids, test_size=self.test_size))

    def texts(self, frame: pd.DataFrame, what: str) -> list[str]:
        column = frame[self.text_column]
        if column.isna().any():
            rows = np.flatnonzero(column.isna().to_numpy())[:5].tolist()
            raise UserError(f"{what}: text_column {self.text_column!r} is empty in row(s) {rows}")
        return column.astype(str).tolist()


def word_attributions(tokenizer: Any, text: str, attributions: np.ndarray | torch.Tensor, max_length: int
                      ) -> pd.DataFrame:
    """One sample's per-token attributions ``(L,)`` as a per-word table for display.

    The text is re-tokenised exactly as the dataset did (same ``max_length``); tokens of one word (word pieces)
    are summed, special tokens and padding are left out. Columns: ``word`` (the text's characters),
    ``attribution`` and ``tokens`` (the word's tokens).

    Args:
        tokenizer: a loaded tokenizer or its folder.
    """
    if isinstance(tokenizer, (str, Path)):
        tokenizer = load_tokenizer(str(tokenizer), "word_attributions")
    values = np.asarray(attributions.detach().cpu() if isinstance(attributions, torch.Tensor) else attributions)
    encoding = tokenizer(text, padding="max_length", truncation=True, max_length=max_length,
                         return_offsets_mapping=True)
    tokens = tokenizer.convert_ids_to_tokens(encoding["input_ids"])
    rows: dict[int, dict[str, Any]] = {}
    for position, word in enumerate(encoding.word_ids()):
        if word is None:
            continue  # [CLS], [SEP], padding
        start, end = encoding["offset_mapping"][position]
        row = rows.setdefault(word, {"start": start, "end": end, "attribution": 0.0, "tokens": []})
        row["end"] = max(row["end"], end)
        row["attribution"] += float(values[position])
        row["tokens"].append(tokens[position])
    return pd.DataFrame([{"word": text[r["start"]:r["end"]], "attribution": r["attribution"],
                          "tokens": " ".join(r["tokens"])} for r in rows.values()])
