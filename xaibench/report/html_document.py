"""A self-contained HTML document: sections of HTML, figures embedded as base64 PNG, inline CSS.

The file opens from disk without a server and loads nothing from outside (no scripts, fonts or stylesheets),
so it can be mailed, archived with a paper's supplement, or opened on an offline cluster node.
"""
from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from dataclasses import dataclass

_CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2em auto; max-width: 72em;
       color: #222; line-height: 1.4; padding: 0 1em; }
h1 { font-size: 1.6em; } h2 { font-size: 1.25em; margin-top: 2em; border-bottom: 1px solid #ccc; }
table.xb-table { border-collapse: collapse; margin: 1.2em 0 0.4em; font-size: 0.9em; }
table.xb-table caption { caption-side: top; text-align: left; font-weight: 600; padding-bottom: 0.4em; }
table.xb-table th, table.xb-table td { padding: 0.25em 0.7em; }
table.xb-table thead th { border-top: 2px solid #222; border-bottom: 1px solid #222; }
table.xb-table tbody tr:last-child th, table.xb-table tbody tr:last-child td { border-bottom: 2px solid #222; }
table.xb-table td { text-align: right; font-variant-numeric: tabular-nums; }
table.xb-table th[scope=row] { text-align: left; font-weight: normal; }
td.text { text-align: left; }
td.best { background: #eef6ee; } td.tie { background: #f7f7ee; }
.xb-warning { color: #8a1c00; background: #fff1ec; border-left: 4px solid #d9480f; padding: 0.4em 0.8em;
              font-weight: 600; }
ul.xb-notes { font-size: 0.85em; color: #444; margin-top: 0.2em; }
details > summary { cursor: pointer; } details > summary h2 { display: inline-block; }
figure { margin: 1.5em 0; } figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: 0.9em; color: #333; }
"""


@dataclass(frozen=True)
class Figure:
    """A figure to embed: PNG bytes and a caption (the caption is also the image's alt text)."""

    png: bytes
    caption: str
    key: str = ""


@dataclass(frozen=True)
class Section:
    """A heading and its body, already HTML (e.g. :func:`xaibench.report.tables.to_html` output)."""

    heading: str
    body_html: str
    collapsed: bool = False  # an appendix: shown closed (<details>), opened by a click


def figure_html(figure: Figure) -> str:
    """``<figure>`` with the PNG inlined as a data URI."""
    if not figure.png.startswith(b"\x89PNG\r\n\x1a\n"):
        raise ValueError(f"figure {figure.key or figure.caption!r} is not PNG data")
    data = base64.b64encode(figure.png).decode("ascii")
    alt = html.escape(figure.caption, quote=True)
    ident = f' id="{html.escape(figure.key, quote=True)}"' if figure.key else ""
    return (f'<figure{ident}><img src="data:image/png;base64,{data}" alt="{alt}">'
            f"<figcaption>{html.escape(figure.caption)}</figcaption></figure>")


def html_document(title: str, sections: Sequence[Section] = (), figures: Sequence[Figure] = (), *,
                  warnings: Sequence[str] = (), intro: str = "") -> str:
    """The whole page: title, warnings first (they change how to read everything else), sections, figures."""
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>",
             f"<h1>{html.escape(title)}</h1>"]
    if intro:
        parts.append(f"<p>{html.escape(intro)}</p>")
    parts += [f'<p class="xb-warning">{html.escape(w)}</p>' for w in warnings]
    for section in sections:
        if section.collapsed:
            parts += [f"<details><summary><h2>{html.escape(section.heading)}</h2></summary>", section.body_html,
                      "</details>"]
        else:
            parts += [f"<h2>{html.escape(section.heading)}</h2>", section.body_html]
    if figures:
        parts.append("<h2>Figures</h2>")
        parts += [figure_html(f) for f in figures]
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
