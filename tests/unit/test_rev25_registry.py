"""rev25: a registry filling itself at its first lookup (perf24) while another thread looks it up, and after an
import that failed."""
from __future__ import annotations

import sys
import threading

import pytest

from xaibench import registry
from xaibench.errors import UserError
from xaibench.registry import Registry


@pytest.fixture
def cats(tmp_path, monkeypatch):
    """A registry of cats filled from the throw-away package ``rev25_cats`` (whose ``tabby.py`` sets ``started``
    and waits for ``go`` while imported: ``registry.CAT_GATES``) and the user plugin module ``rev25_user``
    (``manx``; it looks the registry up while imported)."""
    cats, started, go = Registry("cat", ("rev25_cats",)), threading.Event(), threading.Event()
    monkeypatch.setattr(registry, "CATS", cats, raising=False)
    monkeypatch.setattr(registry, "CAT_GATES", (started, go), raising=False)
    (tmp_path / "rev25_cats").mkdir()
    (tmp_path / "rev25_cats/__init__.py").write_text("")
    (tmp_path / "rev25_cats/tabby.py").write_text(
        "from xaibench.registry import CAT_GATES, CATS\n\nstarted, go = CAT_GATES\nstarted.set()\n"
        "assert go.wait(30)\n\n\n@CATS.register('tabby')\nclass Tabby:\n    pass\n")
    (tmp_path / "rev25_user.py").write_text(
        "from xaibench.registry import CATS\n\nassert 'tabby' in CATS  # looked up while imported: no recursion\n\n\n"
        "@CATS.register('manx')\nclass Manx:\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("XAIBENCH_PLUGINS", "rev25_user")
    yield cats, started, go
    go.set()
    for module in [m for m in sys.modules if m.split(".")[0] in ("rev25_cats", "rev25_user")]:
        del sys.modules[module]


class _NotedLock:
    """``lock``, noting (``entered``) when the thread ``noted`` comes to take it."""

    def __init__(self, lock, noted: int):
        self.lock, self.noted, self.entered = lock, noted, threading.Event()

    def __enter__(self):
        if threading.get_ident() == self.noted:
            self.entered.set()
        return self.lock.__enter__()

    def __exit__(self, *exc):
        return self.lock.__exit__(*exc)


def test_a_lookup_while_another_thread_fills_the_registry_waits_for_its_entries(cats, monkeypatch):
    """The in-process launcher's or joblib's threads looking a method up at once: the first fills the registry; a
    second, meanwhile, found it marked filled and half empty (``UserError: unknown cat 'tabby'; valid: `` in a cell
    whose method is valid). It now waits for the fill to end."""
    cats, started, go = cats
    lock = _NotedLock(getattr(registry, "_FILLING", threading.RLock()), threading.get_ident())
    monkeypatch.setattr(registry, "_FILLING", lock, raising=False)
    found = []
    first = threading.Thread(target=lambda: found.append(cats.get("tabby").__name__))
    first.start()
    assert started.wait(30)  # the first thread imports the package: tabby is not registered yet
    releaser = threading.Thread(target=lambda: (lock.entered.wait(30), go.set()))  # once this thread waits
    releaser.start()
    try:
        assert cats.get("tabby").__name__ == "Tabby"
    finally:
        go.set()
        first.join(30)
        releaser.join(30)
    assert found == ["Tabby"] and cats.names() == ["manx", "tabby"]


def test_a_plugin_module_that_failed_to_import_is_imported_at_the_next_lookup(cats, tmp_path, monkeypatch):
    """``$XAIBENCH_PLUGINS`` naming a module wrongly (a notebook): the first lookup says so; the user fixes the
    name and looks again: the registry stayed marked filled, the module was never imported, and its entry was an
    ``unknown cat``. The import is retried at each lookup until it succeeds."""
    cats, _, go = cats
    go.set()
    (tmp_path / "rev25_later.py").write_text(
        "from xaibench.registry import CATS\n\n\n@CATS.register('lynx')\nclass Lynx:\n    pass\n")
    monkeypatch.setenv("XAIBENCH_PLUGINS", "rev25_user, rev25_lter")
    with pytest.raises(UserError, match="^XAIBENCH_PLUGINS names 'rev25_lter', which cannot be imported"):
        cats.get("tabby")
    monkeypatch.setenv("XAIBENCH_PLUGINS", "rev25_user, rev25_later")
    try:
        assert cats.get("lynx").__name__ == "Lynx" and list(cats) == ["lynx", "manx", "tabby"]
    finally:
        sys.modules.pop("rev25_later", None)
