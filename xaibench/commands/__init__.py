"""CLI verbs (``xaibench <verb> ...``): one module per verb.

Each module defines ``DESCRIPTION`` (one line for ``--help``), ``add_arguments(parser)`` and
``run(args) -> int`` (the exit code). ``xaibench.cli.VERBS`` maps the verb to its module; importing a verb
module must stay cheap (import heavy packages inside ``run``).
"""
