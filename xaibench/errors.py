"""One exception hierarchy. ``UserError`` means the user can fix it: the CLI prints one line and exits 2."""


class XaiBenchError(Exception):
    """Root of every error xaibench raises on purpose."""


class UserError(XaiBenchError):
    """Bad input: unknown name, wrong type, missing file, impossible combination. The message carries the fix."""


class UnreadableTable(UserError):
    """A table file that is there but cannot be read (truncated, corrupt, not Parquet/CSV at all).

    ``path`` is the file, ``kind`` its format (``Parquet``/``CSV``) and ``reason`` the reader's first line, so a
    caller that knows the file's role (e.g. ``compare``'s baseline) can say which file and the fix in one line.
    """

    def __init__(self, message: str, path: str = "", kind: str = "", reason: str = "") -> None:
        super().__init__(message)
        self.path, self.kind, self.reason = path, kind, reason


class NotApplicable(XaiBenchError):
    """A declared capability or modality mismatch: the row becomes ``status="not_applicable"``."""


class StoreCorrupt(XaiBenchError):
    """A stored artefact failed its checksum or schema; callers recompute instead of trusting it."""


class StorageError(XaiBenchError):
    """A file could not be written (full disk, read-only folder, a file where a folder should be).

    The message is one line naming the path and the OS error; the CLI prints it and exits 1. Everything written
    before stays valid, and rerunning after the cause is fixed computes only what is missing.
    """

    def __init__(self, message: str, path: str = "", errno: int | None = None) -> None:
        super().__init__(message)
        self.path, self.errno = path, errno

    @classmethod
    def from_os_error(cls, error: OSError, path: object = "") -> "StorageError":
        where = error.filename or path
        reason = f"[Errno {error.errno}] {error.strerror}" if error.errno else str(error)
        return cls(f"cannot write {where}: {reason}", str(where), error.errno)
