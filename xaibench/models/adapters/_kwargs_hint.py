"""What a ``TypeError`` from ``cls(**model.kwargs)`` means in the config's words: ``+model.kwargs.hiden=8`` ended in
Python's bare ``__init__() got an unexpected keyword argument 'hiden'``; the line now names the close parameter."""
from __future__ import annotations

import difflib
import inspect
from collections.abc import Callable, Mapping


def kwargs_hint(factory: Callable, kwargs: Mapping[str, object]) -> str:
    """``"; did you mean model.kwargs.hidden? (Net takes: hidden, depth)"`` for the first key of ``kwargs`` that
    ``factory``'s signature lacks; "" where every key is a parameter, the factory takes ``**kwargs`` or its signature
    cannot be read (a C type)."""
    try:
        parameters = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return ""
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return ""
    names = [name for name, p in parameters.items()
             if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)]
    unknown = [str(key) for key in kwargs if str(key) not in names]
    if not unknown:
        return ""
    takes = f"{getattr(factory, '__name__', 'it')} takes: {', '.join(names) or 'no keyword arguments'}"
    close = difflib.get_close_matches(unknown[0], names, n=1, cutoff=0.6)
    return f"; did you mean model.kwargs.{close[0]}? ({takes})" if close else f" ({takes})"
