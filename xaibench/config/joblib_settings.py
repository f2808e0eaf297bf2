"""The joblib launcher's settings (``hydra/launcher=joblib``), checked by the pre-flight before any file is touched.

Hydra's joblib launcher passes ``hydra.launcher.*`` to ``joblib.Parallel`` but replaces ``backend`` with ``loky``
(threads cannot run Hydra jobs): ``backend=bogus``, ``backend=threading`` or ``prefer=threads`` ran silently in
loky processes. Values joblib refuses (``prefer=bogus``, ``require=sharedmem``, ``batch_size=0``,
``max_nbytes=lots``) passed the pre-flight, claimed the sweep folder and wrote the stored cells, then stopped in
joblib's traceback; ``pre_dispatch`` and ``timeout`` only failed once the jobs were dispatched (``timeout=-1``:
every job a ``TimeoutError``), and ``mmap_mode=bogus`` was ignored.
"""
from __future__ import annotations

from typing import Any

from xaibench.errors import UserError

_MMAP_MODES = (None, "r+", "r", "w+", "c")  # numpy.memmap's modes, for the arrays joblib passes to its workers


def check_joblib_settings(settings: dict[str, Any]) -> None:
    """Refuse a ``hydra.launcher.*`` value of the joblib launcher that it would ignore or that joblib refuses.

    Args:
        settings: the composed ``hydra.launcher`` section (``n_jobs``, ``backend``, ``prefer``, ``batch_size``, ...).

    Raises:
        UserError: one line naming the setting, the value and what it takes.
    """
    for key, meant in (("backend", "loky"), ("prefer", "processes")):  # Hydra passes backend=loky: both ignored
        if settings.get(key) not in (None, meant):
            raise UserError(f"hydra.launcher.{key}={settings[key]} is not used: Hydra's joblib launcher always runs "
                            f"its jobs in loky worker processes (threads cannot run Hydra jobs); leave it out, or set "
                            f"hydra.launcher.{key}={meant}")
    if settings.get("require") is not None:
        raise UserError(f"hydra.launcher.require={settings['require']} cannot be met: the loky worker processes "
                        f"of Hydra's joblib launcher share no memory; leave it null")
    mmap_mode = settings.get("mmap_mode")
    if mmap_mode not in _MMAP_MODES:
        raise UserError(f"hydra.launcher.mmap_mode must be one of r, r+, w+, c or null (how workers map large "
                        f"arrays), got {mmap_mode}")
    timeout = settings.get("timeout")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0):
        raise UserError(f"hydra.launcher.timeout must be a positive number of seconds per job or null (no limit), "
                        f"got {timeout}")
    _check_pre_dispatch(settings.get("pre_dispatch"))
    _check_with_joblib(settings)


def _check_pre_dispatch(value: Any) -> None:
    """``all``, a positive count, or an expression of ``n_jobs`` (``2*n_jobs``), as joblib evaluates it."""
    from joblib._utils import eval_expr

    if value is None or value == "all":
        return
    try:
        count = eval_expr(str(value).replace("n_jobs", "2"))
    except Exception:  # noqa: BLE001 - joblib's own check, which raises ValueError/TypeError/SyntaxError
        count = None
    if isinstance(count, bool) or not isinstance(count, (int, float)) or count < 1:
        raise UserError(f"hydra.launcher.pre_dispatch must be 'all', a positive number of jobs or an expression of "
                        f"n_jobs such as '2*n_jobs', got {value}")


def _check_with_joblib(settings: dict[str, Any]) -> None:
    """Build (not run) ``joblib.Parallel`` with ``batch_size`` and ``max_nbytes`` as the launcher passes them
    (``backend`` loky, counts given as strings made integers): joblib's own checks, before any file is touched."""
    from joblib import Parallel

    for key in ("batch_size", "max_nbytes"):
        value = settings.get(key)
        if value is None:
            continue
        try:
            Parallel(n_jobs=1, backend="loky", **{key: int(value) if str(value).isdigit() else value})
        except (ValueError, TypeError) as error:
            reason = str(error).split(", got")[0].split(" (type")[0]
            raise UserError(f"hydra.launcher.{key}={value} is refused by joblib: {reason}") from None
