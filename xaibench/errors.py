"""One exception hierarchy. ``UserError`` means the user can fix it: the CLI prints one line and exits 2."""


class XaiBenchError(Exception):
    """Root of every error xaibench raises on purpose."""


class UserError(XaiBenchError):
    """Bad input: unknown name, wrong type, missing file, impossible combination. The message carries the fix."""


class NotApplicable(XaiBenchError):
    """A declared capability or modality mismatch: the row becomes ``status="not_applicable"``."""


class StoreCorrupt(XaiBenchError):
    """A stored artefact failed its checksum or schema; callers recompute instead of trusting it."""
