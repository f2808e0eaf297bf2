"""Load the two tables of a comparison and decide which rows are the same measurement.

Rows are matched on what defines a measurement: model + parameters, dataset + parameters, method + parameters,
metric + parameters, sample count (and target mode where recorded), seed and sample id -- the comparison and
competitor columns of :mod:`xaibench.results.groups`, so ``compare`` and the reports agree on what an experiment
is. Content revisions (a dataset's or user weights' fingerprint) are not part of the match: they are compared
and a changed revision is reported, so a changed dataset shows up as a named difference, not as every row
missing.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd

from xaibench.errors import UnreadableTable, UserError
from xaibench.results.collect import PARTIAL, SWEEP_CELLS, TABLE_NAME, load_table, refuse_lfs_pointer, shared_texts
from xaibench.results.folder_paths import under_a_file
from xaibench.results.manifest import MANIFEST_NAME
from xaibench.results.groups import comparison_columns, competitor_columns
from xaibench.results.roles import CONTROL, mentions_role, split_role
from xaibench.results.schema import COLUMNS, SCHEMA_VERSION, conform, oldest_comparable_version, upgrade

REVISION_COLUMNS = ("model_revision", "dataset_revision")
# Keys of a metric's recorded ``params`` that note how a run went, not what was measured: a GPU that halved the
# chunk after CUDA out-of-memory records ``chunk_backoffs`` (the chunk size is not in the key; values agree).
RUN_NOTES = ("chunk_backoffs",)
# Without these a frame is not a results table at all.
REQUIRED = ("schema_version", "model", "dataset", "method", "metric", "family", "higher_is_better", "sample_id",
            "seed", "value", "status", "message")


# Columns that no comparison reads (``compare_tables``, the report's context, the verdict): ``load_results(...,
# compared_only=True)`` leaves them unread. Measurements and identifiers of cells and explanations: the match is on
# what was measured (``unit_columns``), never on these. A 640k-row table's are ~85 MB of its ~760 in pandas.
# ``cell_key`` is read (a pointer a row once texts are shared): the checks of a table file key rows on it, and so
# are ``model_label`` / ``dataset_label``: never matched on, they name models and datasets in every output.
NOT_COMPARED = ("explain_s", "score_s", "n_forward", "peak_mem_mb", "model_flag", "explanation_key",
                "explain_device", "oom_backoffs")

PYTHON_TEXT = pd.StringDtype("python", na_value=pd.NA)  # the schema's "string", held as Python strings


def load_results(path: str | os.PathLike[str], role: str, *, compared_only: bool = False) -> pd.DataFrame:
    """Read a results table (Parquet/CSV file or sweep folder) of this schema version, or raise ``UserError``.

    Args:
        path: the table.
        role: ``"baseline"`` or ``"current"``, named in the error message.
        compared_only: leave out the columns no comparison reads (``NOT_COMPARED``; a Parquet table's are not read
            at all): the frame ``conform`` gives, less those columns. Not for a table that is written back
            (``--update-baseline`` writes the whole table).
    """
    target = Path(path)
    _check_present(target, path, role)
    _check_csv_version(target, path, role)
    skip = NOT_COMPARED if compared_only else ()
    try:
        frame = load_table(target, skip=skip, text_dtype=PYTHON_TEXT if compared_only else None)
    except UnreadableTable as error:
        raise UserError(f"{role} {error.path} is unreadable: not a valid {error.kind} file ({error.reason}); "
                        f"{_unreadable_fix(role, error.path)} (nothing written)") from None
    except UserError:
        raise
    except Exception as error:  # noqa: BLE001 - any reader failure means: not a table we can read
        raise UserError(f"{role} {path} is not a results table ({type(error).__name__}: "
                        f"{_first_line(error)})") from None
    lacking = [c for c in REQUIRED if c not in frame.columns]
    if lacking:
        raise UserError(f"{role} {path} is not a results table: it lacks the column(s) {', '.join(lacking)}")
    version = _check_version(frame, path, role)
    note = frame.attrs.get(PARTIAL, "")
    try:
        conformed = _conform(upgrade(frame, version), skip)  # an older comparable table: new measurements unknown
    except (ValueError, TypeError) as error:
        raise UserError(f"{role} {path} is not a results table of schema version {SCHEMA_VERSION}: "
                        f"{_first_line(error)}") from None
    conformed.attrs = {PARTIAL: note} if note else {}
    frame = _unscored_as_nan(conformed)
    del conformed  # the frame is now the only holder of its columns: _shared_texts lets each go once converted
    return _shared_texts(frame) if compared_only else frame


def _shared_texts(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with each text column held as one Python string per distinct text (``StringDtype("python")``,
    the same values and missing values) instead of Arrow's buffer of every row's bytes: a 640k-row table's
    parameter JSON columns alone were ~370 MB there, ~20 MB of pointers here. Columns are converted and let go
    one at a time (the caller's frame must be the only holder for its memory to go). A Parquet table's columns
    arrive so already (``load_table(text_dtype=...)``); this converts what others give (a CSV, a sweep's cells)."""
    columns = {name: shared_texts(frame.pop(name), PYTHON_TEXT) for name in list(frame.columns)}
    shared = pd.DataFrame(columns)
    shared.attrs = frame.attrs
    return shared


def _conform(frame: pd.DataFrame, skip: tuple[str, ...]) -> pd.DataFrame:
    """``conform(frame)`` less the columns ``skip`` names: the others in the schema's order and dtypes."""
    if not skip:
        return conform(frame)
    kept = [c for c in COLUMNS if c not in skip]
    missing = [c for c in kept if c not in frame.columns]
    if missing:
        raise ValueError(f"results frame lacks columns: {', '.join(missing)}")
    python_text = [c for c in kept if getattr(frame[c].dtype, "storage", None) == "python"]  # kept as held
    return frame[kept].astype({c: COLUMNS[c] for c in kept if c not in python_text})


NAN_OK = "the value is NaN though the row says ok (a table not written by a sweep?)"


def _unscored_as_nan(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows marked ``ok`` whose value is NaN are ``status="nan"`` (as a sweep records a score it could not compute):
    else a NaN paired with a number fell out of every test, and a table with NaN scores passed as unchanged."""
    unscored = (frame["status"] == "ok") & frame["value"].isna()
    if not unscored.any():
        return frame
    frame = frame.copy()
    frame.loc[unscored, "status"] = "nan"
    empty = unscored & (frame["message"].astype(str) == "")
    frame.loc[empty, "message"] = NAN_OK
    return frame


def _check_present(target: Path, path, role: str) -> None:
    """Raise ``UserError`` with the fix when there is no table to read: nothing at ``path``, a folder with neither a
    table nor a sweep, or a Git LFS pointer in place of the table (a checkout without LFS, e.g. CI's default)."""
    make = (f"; make the first baseline with xaibench compare {path} CURRENT --update-baseline and commit it "
            "(docs/ci.md)" if role == "baseline" else "; run the sweep first")
    if not target.exists():  # a file where a folder of the path should be: no baseline can be made there either
        raise UserError(f"{role} table {path} not found{under_a_file(path) or make}")
    table = target / TABLE_NAME if target.is_dir() else target
    if target.is_dir() and not table.is_file() and not (target / SWEEP_CELLS).is_dir() \
            and not (target / MANIFEST_NAME).is_file():
        raise UserError(f"{role} folder {path} has no {TABLE_NAME} and is not a sweep folder{make}")
    if table.is_file():
        refuse_lfs_pointer(table, role)


def _unreadable_fix(role: str, file: str) -> str:
    """How to get a readable table back: a committed baseline is restored from git (or made anew), a run's table is
    written again by its sweep."""
    if role == "baseline":
        return (f"restore it from git (git checkout -- {file}) or make a new one from a finished sweep with "
                "xaibench compare BASELINE CURRENT --update-baseline")
    return "rerun the sweep that wrote it (finished cells are reused) to write it again"


def _check_csv_version(target: Path, path, role: str) -> None:
    """A CSV table's schema version before its columns: a v2 CSV lacks v3's columns, and the reader's "lacks
    columns" hid what to do (regenerate it), which a v2 Parquet table is told (``_check_version``)."""
    if target.suffix != ".csv" or not target.is_file():
        return
    try:
        versions = pd.read_csv(target, usecols=["schema_version"])["schema_version"]
    except Exception:  # noqa: BLE001 - no such column, not CSV: the reader names what is wrong
        return
    frame = pd.DataFrame({"schema_version": pd.to_numeric(versions, errors="coerce")})
    _check_version(frame, path, role)


def partial_note(frame: pd.DataFrame) -> str:
    """Why a loaded table is incomplete (``"2 of 3 cells; the sweep did not finish"``), or "" when it is not."""
    return str(frame.attrs.get(PARTIAL, ""))


def _check_version(frame: pd.DataFrame, path, role: str) -> int:
    """The table's oldest schema version, if this version compares it (``schema.MEASUREMENTS_ADDED``: a v3
    table lacks only the measurement column ``model_device``), else ``UserError``."""
    versions = sorted({int(v) for v in frame["schema_version"].dropna().unique()})
    older = [v for v in versions if v < oldest_comparable_version()]
    newer = [v for v in versions if v > SCHEMA_VERSION]
    if older:
        raise UserError(f"{role} {path} has results schema version {older[0]}, this xaibench reads version "
                        f"{SCHEMA_VERSION}; regenerate it with this version (docs/ci.md: refreshing the baseline)")
    if newer:
        raise UserError(f"{role} {path} has results schema version {newer[-1]}, newer than this xaibench's "
                        f"{SCHEMA_VERSION}; upgrade xaibench")
    return versions[0] if versions else SCHEMA_VERSION


def unit_columns(baseline: pd.DataFrame, current: pd.DataFrame) -> list[str]:
    """Columns naming one *unit*: one competitor (method + params) on one metric in one comparison group.

    Columns only one table has (a newer optional column) are left out, so both tables are matched alike.
    """
    columns = comparison_columns(baseline) + competitor_columns(baseline)
    return [c for c in columns if c in current.columns and c not in REVISION_COLUMNS]


def group_columns(units: list[str]) -> list[str]:
    """The comparison-group part of the unit columns (the unit minus the competitor)."""
    competitors = set(competitor_columns(pd.DataFrame(columns=units)))
    return [c for c in units if c not in competitors]


def without_run_notes(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with ``RUN_NOTES`` dropped from its ``params`` JSON: the same measurement matches across machines."""
    if "params" not in frame.columns or frame.empty:
        return frame
    texts = frame["params"].astype(str)
    if not texts.str.contains("|".join(RUN_NOTES), regex=True).any():
        return frame
    codes, uniques = pd.factorize(texts)
    cleaned = [_drop_notes(text) for text in uniques]
    return frame.assign(params=pd.Series([cleaned[c] for c in codes], index=frame.index, dtype=frame["params"].dtype))


def _drop_notes(text: str) -> str:
    try:
        params = json.loads(text or "{}")
    except ValueError:
        return text
    if not isinstance(params, dict) or not any(k in params for k in RUN_NOTES):
        return text
    return json.dumps({k: v for k, v in params.items() if k not in RUN_NOTES}, sort_keys=True)


def records_any_role(frame: pd.DataFrame) -> bool:
    """Whether any row's ``method_params`` records a role (tables written before roles record none)."""
    return "method_params" in frame.columns and bool(mentions_role(frame["method_params"].astype(str)).any())


def without_roles(frame: pd.DataFrame) -> tuple[pd.DataFrame, frozenset[str]]:
    """``frame`` with the role dropped from its ``method_params`` JSON, and the methods its rows record as controls
    (``"role": "control"``, ``results/roles.py``). A role says how to read a method's scores, not what was measured,
    so it is not part of the match (a table written before rows recorded it is the same experiment)."""
    if frame.empty or not records_any_role(frame):
        return frame, frozenset()
    codes, uniques = pd.factorize(frame["method_params"].astype(str))
    parsed = [split_role(text) for text in uniques]
    controls = frozenset(frame["method"].astype(str)[[parsed[c][1] == CONTROL for c in codes]])
    cleaned = pd.Series([parsed[c][0] for c in codes], index=frame.index, dtype=frame["method_params"].dtype)
    return frame.assign(method_params=cleaned), controls


def check_unique(frame: pd.DataFrame, key: list[str], role: str, path) -> None:
    duplicated = frame.duplicated(key, keep=False)
    if duplicated.any():
        first = frame.loc[duplicated].iloc[0]
        raise UserError(f"{role} {path} has {int(duplicated.sum())} rows measuring the same thing more than once "
                        f"(e.g. {first['model']}/{first['dataset']}/{first['method']}/{first['metric']} sample "
                        f"{first['sample_id']!r}); compare one sweep's table, e.g. from xaibench collect")


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
