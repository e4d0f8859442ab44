"""Report documents, shared by the deploy and sweep reports: content blocks (``Heading``, ``Para``,
``Table``, ``Image``, ``Items``) written as Markdown (``to_markdown``) or as one self-contained
HTML file (``to_html``); PNG figures drawn under a fixed style, so that the same figures give the
same bytes (``new_figure``, ``draw_png``); and the number formats of their tables, with missing
figures as "n/a".
"""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass

from tinyprune.quality import NA, real_number
from tinyprune.sizes import format_size

DPI = 100
_RC = {"font.family": "DejaVu Sans", "font.size": 9, "axes.titlesize": 10, "axes.grid": True,
       "grid.alpha": 0.3, "axes.spines.top": False, "axes.spines.right": False, "savefig.facecolor": "white",
       "figure.facecolor": "white", "path.simplify": False, "svg.hashsalt": "tinyprune"}


# ---- number formats ----------------------------------------------------------------------------

def fmt_bytes(n) -> str:
    n = real_number(n)
    if n is None:
        return NA
    n = int(n)
    return f"{n:,} B" if abs(n) < 1024 else f"{n:,} B ({'-' if n < 0 else ''}{format_size(abs(n))})"


def fmt_b(n) -> str:
    """Bytes without the binary-unit gloss: ``363,000 B``."""
    n = real_number(n)
    return NA if n is None else f"{int(n):,} B"


def fmt_count(n, digits: int = 0) -> str:
    n = real_number(n)
    return NA if n is None else f"{n:,.{digits}f}"


def fmt_pct(part, whole) -> str:
    part, whole = real_number(part), real_number(whole)
    return NA if part is None or not whole else f"{100 * part / whole:.1f} %"


def fmt_change(before, after, fmt=fmt_count) -> str:
    if before is None and after is None:
        return NA
    if before == after:
        return f"{fmt(after)} (unchanged)"
    return f"{fmt(before)} → {fmt(after)}"


# ---- content blocks ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Heading:
    level: int
    text: str


@dataclass(frozen=True)
class Para:
    text: str
    kind: str = ""  # "good" / "bad": a headline, bold; "note": a caveat, italic


@dataclass(frozen=True)
class Table:
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class Image:
    name: str
    alt: str


@dataclass(frozen=True)
class Items:
    items: tuple[tuple[str, str], ...]  # (label, code): "label: `code`", label may be empty


# ---- writers -------------------------------------------------------------------------------------

def _md_cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _md_block(block) -> str:
    if isinstance(block, Heading):
        return f"{'#' * block.level} {block.text}"
    if isinstance(block, Para):
        return {"good": f"**{block.text}**", "bad": f"**{block.text}**", "note": f"*{block.text}*"}.get(
            block.kind, block.text)
    if isinstance(block, Table):
        lines = ["| " + " | ".join(_md_cell(h) for h in block.header) + " |",
                 "|" + "|".join(" --- " for _ in block.header) + "|"]
        lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in block.rows]
        return "\n".join(lines)
    if isinstance(block, Image):
        return f"![{block.alt}]({block.name})"
    if isinstance(block, Items):
        return "\n".join(f"- {label + ': ' if label else ''}`{code}`" for label, code in block.items)
    raise TypeError(f"unknown report block {type(block).__name__}")


def to_markdown(content: list) -> str:
    return "\n\n".join(_md_block(b) for b in content) + "\n"


_CSS = """
body{font-family:-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;max-width:1100px;margin:2em auto;
padding:0 1em;color:#222;line-height:1.45}
h1{font-size:1.6em;margin-bottom:.3em}h2{font-size:1.25em;margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.8em 0;font-size:.92em}
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:left;vertical-align:top}
th{background:#f2f2f2}tr:nth-child(even) td{background:#fafafa}
p.good{background:#e6f4ea;border-left:5px solid #2e7d32;padding:.5em .8em;font-weight:bold}
p.bad{background:#fdecea;border-left:5px solid #c62828;padding:.5em .8em;font-weight:bold}
p.note{font-style:italic;color:#555}
figure{margin:1em 0}img{max-width:100%;height:auto;border:1px solid #eee}
code{background:#f4f4f4;padding:.1em .3em;border-radius:3px}
""".strip()


def _html_block(block, images: dict[str, bytes]) -> str:
    e = html.escape
    if isinstance(block, Heading):
        return f"<h{block.level}>{e(block.text)}</h{block.level}>"
    if isinstance(block, Para):
        return f'<p class="{block.kind}">{e(block.text)}</p>' if block.kind else f"<p>{e(block.text)}</p>"
    if isinstance(block, Table):
        head = "".join(f"<th>{e(h)}</th>" for h in block.header)
        body = "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in block.rows)
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    if isinstance(block, Image):
        data = base64.b64encode(images[block.name]).decode("ascii")
        return f'<figure><img src="data:image/png;base64,{data}" alt="{e(block.alt)}"></figure>'
    if isinstance(block, Items):
        items = "".join(f"<li>{e(label) + ': ' if label else ''}<code>{e(code)}</code></li>"
                        for label, code in block.items)
        return f"<ul>{items}</ul>"
    raise TypeError(f"unknown report block {type(block).__name__}")


def to_html(content: list, images: dict[str, bytes]) -> str:
    """One file: CSS inline, every image a data: URI, no external references."""
    title = next((b.text for b in content if isinstance(b, Heading)), "tinyprune deploy")
    body = "\n".join(_html_block(b, images) for b in content)
    return (f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{html.escape(title)}</title>\n'
            f"<style>\n{_CSS}\n</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n")


# ---- figures -------------------------------------------------------------------------------------

def new_figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return buf.getvalue()


def draw_png(draw, report: dict) -> bytes:
    """Run ``draw(report) -> Figure`` under tinyprune's fixed style (no user matplotlibrc)."""
    import matplotlib

    with matplotlib.rc_context():
        matplotlib.rcdefaults()
        matplotlib.rcParams.update(_RC)
        return _png(draw(report))


def rows_figure(width: float, row_height: float, rows: int, title: str, empty: str):
    """(figure, axes) for a chart of ``rows`` horizontal rows, at most 12 inches tall, titled; with
    no rows the axes already say ``empty`` and the caller returns the figure as it is."""
    fig = new_figure(width, min(12.0, 1.6 + row_height * max(rows, 1)))
    ax = fig.add_subplot()
    ax.set_title(title)
    if not rows:
        placeholder(ax, empty)
    return fig, ax


def placeholder(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", color="#666666")
    ax.set_xticks([])
    ax.set_yticks([])
