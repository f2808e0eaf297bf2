"""The existing file or folder closest to a misspelt path, for the ``did you mean ...?`` of a "not found" line.

Torch-free: the pre-flight (``config/datachecks.py``) names the close data or weights file before anything heavy is
imported, and the model adapters the close ``.py`` file of ``model.target`` (``models/adapters/_source.py``).
"""
from __future__ import annotations

import difflib
from collections.abc import Callable
from pathlib import Path


def closest_path(location: str, *, suffixes: tuple[str, ...] | None = None, kind: str = "file") -> str:
    """The existing path closest to the missing ``location``, spelt as given with the misspelt parts replaced; ""
    when none is close (``./net.py`` -> ``./nets.py``; ``modles/nets.py`` -> ``models/nets.py``; ``shop.cvs`` ->
    ``shop.csv``).

    Each part from the first missing one is matched among its folder's entries (the whole name and its stem
    close): folders, then for the last part
    a file (``kind="file"``, with one of ``suffixes`` where given: ``(".py",)`` for a model file), a folder
    (``"folder"``: an image folder) or either (``"any"``: ``model.path`` is a file or a Hugging Face folder).
    A last part not ending in ``.py`` is never matched to a ``.py`` file (a weights file is not the network's
    code, ``net.pt`` is not ``nets.py``).
    """
    given = location.replace("\\", "/").split("/")
    parts = list(given)
    anchored = len(parts) > 1 and (parts[0] in ("", ".", "..") or parts[0].startswith("~"))  # /, ., .., ~user
    first = 1 if anchored else 0
    folder = Path(parts[0] or "/").expanduser() if anchored else Path(".")
    if not folder.is_dir():
        return ""
    for i in range(first, len(parts)):
        last = i == len(parts) - 1
        wanted = _last_part(parts[i], suffixes, kind) if last else _folder
        if wanted(folder / parts[i]):
            folder = folder / parts[i]
            continue
        try:
            entries = [entry.name for entry in folder.iterdir() if wanted(entry)]
        except OSError:
            return ""
        close = _closest_name(parts[i], entries)
        if not close:
            return ""
        parts[i] = close
        folder = folder / close
    return "/".join(parts) if parts != given else ""


def did_you_mean(location: str, option: str, *, kind: str = "file") -> str:
    """``; did you mean {option}=<closest path>?`` (:func:`closest_path` of that ``kind``), or "" when none is close."""
    close = closest_path(location, kind=kind)
    return f"; did you mean {option}={close}?" if close else ""


def _closest_name(given: str, names: list[str]) -> str:
    """The name closest to ``given`` (difflib, cutoff 0.6) whose stem is close too: a shared suffix alone made
    ``zzz.csv`` look like ``t.csv``; "" when none is."""
    if not names:  # an empty folder (get_close_matches refuses n=0 with a ValueError)
        return ""
    for name in difflib.get_close_matches(given, names, n=len(names), cutoff=0.6):
        if difflib.SequenceMatcher(None, Path(given).stem, Path(name).stem).ratio() >= 0.6:
            return name
    return ""


def _folder(entry: Path) -> bool:
    return entry.is_dir() and not entry.name.startswith(".")


def _last_part(given: str, suffixes: tuple[str, ...] | None, kind: str) -> Callable[[Path], bool]:
    """Whether an entry may stand for the path's last part ``given`` (a ``kind`` of :func:`closest_path`)."""
    code = given.endswith(".py")

    def is_candidate(entry: Path) -> bool:
        if kind != "file" and _folder(entry):
            return True
        if kind == "folder" or not entry.is_file() or (suffixes is not None and entry.suffix not in suffixes):
            return False
        return code or entry.suffix != ".py"
    return is_candidate
