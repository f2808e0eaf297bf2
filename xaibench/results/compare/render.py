"""Render a ``Comparison``: a Markdown report for a pull-request comment, plain lines for the terminal and a
machine-readable JSON verdict. The names every caller imports from here, from where they live:

- ``render_markdown``: the Markdown report (``to_markdown``), shortened to a pull-request comment's size.
- ``render_lines``: one-line texts (``verdict_line``, ``finding_line``, the notes on a partial or older table).
- ``render_json``: the JSON verdict (``to_json``, ``dumps``).
- ``render_shared``: what all three say alike (counts by kind, whether and how the changes can be accepted).
"""
from xaibench.results.compare.render_json import dumps, to_json
from xaibench.results.compare.render_lines import (COMMENT_BUDGET, COMMENT_LIMIT, control_names, finding_line,
                                                   partial_text, refresh_line, schema_text, shortened_text,
                                                   unused_text, verdict_line)
from xaibench.results.compare.render_markdown import (BELOW_CONTROL_RULE, MAX_ROWS, REFRESH_LINES, beyond_tolerance,
                                                      to_markdown)
from xaibench.results.compare.render_shared import update_command

__all__ = ["BELOW_CONTROL_RULE", "COMMENT_BUDGET", "COMMENT_LIMIT", "MAX_ROWS", "REFRESH_LINES", "beyond_tolerance",
           "control_names", "dumps", "finding_line", "partial_text", "refresh_line", "schema_text", "shortened_text",
           "to_json", "to_markdown", "unused_text", "update_command", "verdict_line"]
