"""The human-readable reports of one ``tinyprune sweep``: Markdown, self-contained HTML, plots.

    from tinyprune.sweep_report import render, summary_lines, point_line
    names = render(doc, out_dir)     # sweep.md, sweep.html, accuracy_vs_flash.png, headroom.png
    lines = summary_lines(doc)       # what the CLI prints at the end

``doc`` is the dict written to ``sweep.json`` (rows plus ``tinyprune.sweep_summary.summarise``'s summary).
The blocks, writers and plot style are the deploy report's (``tinyprune.report_doc``), so the
two read alike and the PNGs are byte-identical for the same figures.
"""

from __future__ import annotations

from pathlib import Path

from tinyprune.quality import NA, fmt_metric, higher_is_better, metric_name, metric_title
from tinyprune.report_doc import (Heading, Image, Items, Para, Table, draw_png, fmt_b, fmt_count, fmt_pct, new_figure,
                                  placeholder, rows_figure, to_html, to_markdown)
from tinyprune.sizes import format_size

PLOTS = ("accuracy_vs_flash.png", "headroom.png")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "h", "*", "p")
PALETTE = ("#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860", "#DA8BC3", "#8C8C8C", "#CCB974",
           "#64B5CD", "#1B9E77", "#D95F02")


def _metric(doc: dict) -> str:
    """The sweep's metric: accuracy (higher is better) or an error such as MSE (lower is)."""
    s = doc.get("summary") or {}
    return s.get("metric") or next((r["metric"] for r in doc.get("rows") or [] if r.get("metric")), "accuracy")


def _value(doc: dict, value) -> str:
    return fmt_metric(value, _metric(doc))


def _name(doc: dict) -> str:
    """``accuracy`` or ``MSE``, as the text says it."""
    return metric_name(_metric(doc))


def _title(doc: dict) -> str:
    return metric_title(_metric(doc))


def _on_target(row: dict):
    """A row's metric on the target (rows of sweeps before metric_target: the target accuracy)."""
    return row.get("metric_target", row.get("accuracy_target"))


def _size(n) -> str:
    return NA if n is None else format_size(int(n))


def _free(used, free, budget) -> str:
    if used is None or free is None:
        return NA
    return f"{fmt_b(used)} / {fmt_b(free)} free ({fmt_pct(free, budget)})"


def _configs(doc: dict) -> list[dict]:
    return (doc.get("summary") or {}).get("configs") or []


def _boards(doc: dict) -> list[str]:
    seen: list[str] = []
    for r in doc.get("rows") or []:
        if r["board"] not in seen:
            seen.append(r["board"])
    return seen


# ---- text -----------------------------------------------------------------------------------------

def recommendation_text(doc: dict) -> str:
    rec = (doc.get("summary") or {}).get("recommendation") or {}
    if not rec.get("board"):
        return f"No recommendation: {rec.get('reason') or 'no rows'}."
    bar = "minimum" if higher_is_better(_metric(doc)) else "maximum"
    source = rec.get("threshold_source") or rec.get("min_accuracy_source")
    value = rec.get("value", rec.get("accuracy"))
    return (f"Recommended board: {rec['board']} ({_size(rec['board_cost_bytes'])} of flash + RAM), "
            f"{rec['reason']} ({bar}: {source}): {_value(doc, value)} with a flash "
            f"budget of {_size(rec['flash_budget_bytes'])} ({_size(rec['flash_free_bytes'])} free) and a RAM budget "
            f"of {_size(rec['ram_budget_bytes'])} ({_size(rec['ram_free_bytes'])} free).")


def knee_text(doc: dict) -> str:
    k = (doc.get("summary") or {}).get("knee") or {}
    if not k.get("config"):
        return f"Knee of the {_name(doc)} curve: none ({k.get('reason') or NA})."
    return (f"Knee of the {_name(doc)} curve: a flash budget of {_size(k['flash_budget_bytes'])} "
            f"({k['config']}, {_value(doc, k.get('value', k.get('accuracy')))}); {k['reason']}.")


def headline(doc: dict) -> str:
    s = doc.get("summary") or {}
    grid = doc.get("grid") or {}
    n = s.get("points", len(doc.get("rows") or []))
    deploy = (doc.get("config") or {}).get("deploy") or {}
    return (f"{n} point(s): {len(grid.get('boards') or [])} board(s) x {grid.get('flash_label', NA)} flash x "
            f"{grid.get('ram_label', NA)} RAM x {len(grid.get('seeds') or [])} seed(s), firmware at "
            f"{deploy.get('opt', '-Os')}; {s.get('ok', 0)} fit, {s.get('failed', 0)} failed.")


def short_error(text: str | None, limit: int = 160) -> str:
    """The first sentence of the first line of an error, at most ``limit`` characters."""
    if not text:
        return NA
    first = text.strip().splitlines()[0]
    cut = first.find(". ")
    first = first[:cut + 1] if cut > 0 else first
    return first if len(first) <= limit else first[:limit - 1].rstrip() + "…"


def point_line(row: dict, seconds: float | None = None) -> str:
    """One line per finished point, as the sweep runs."""
    metric = row.get("metric") or "accuracy"
    where = (f"{row['board']} flash {_size(row['flash_budget_bytes'])} RAM {_size(row['ram_budget_bytes'])} "
             f"seed {row['seed']}")
    took = f" ({seconds:.1f} s)" if seconds is not None else ""
    if row["status"] == "ok":
        return (f"ok      {where}: {metric_name(metric)} {fmt_metric(_on_target(row), metric)}, "
                f"flash {fmt_b(row['flash_free_bytes'])} free, RAM {fmt_b(row['ram_free_bytes'])} free{took}")
    return f"FAILED  {where}: {row.get('error_kind') or 'error'}: {short_error(row.get('error'))}{took}"


def _board_table(doc: dict, board: str) -> Table:
    rows = []
    for c in _configs(doc):
        if c["board"] != board:
            continue
        pts = [r for r in doc["rows"] if r["board"] == board and r["flash_budget_bytes"] == c["flash_budget_bytes"]
               and r["ram_budget_bytes"] == c["ram_budget_bytes"]]
        ok = [r for r in pts if r["status"] == "ok"]
        used_f = max((r["flash_bytes"] for r in ok), default=None)
        used_r = max((r["ram_bytes"] for r in ok), default=None)
        accs = [_on_target(r) for r in ok if _on_target(r) is not None]
        worst = ("min", min) if higher_is_better(_metric(doc)) else ("max", max)
        acc = NA if not accs else (_value(doc, sum(accs) / len(accs))
                                   + (f" ({worst[0]} {_value(doc, worst[1](accs))})" if len(accs) > 1 else ""))
        lat = c.get("estimated_latency_ms_mean")
        rows.append((_size(c["flash_budget_bytes"]), _size(c["ram_budget_bytes"]),
                     ", ".join(str(s) for s in c["seeds"]),
                     "yes" if c["fits"] else f"no ({len(pts) - len(ok)} of {len(pts)} failed)" if pts else NA, acc,
                     _free(used_f, c.get("flash_free_bytes_min"), c["flash_budget_bytes"]),
                     _free(used_r, c.get("ram_free_bytes_min"), c["ram_budget_bytes"]),
                     NA if lat is None else f"{lat:,.3f} ms",
                     "; ".join(short_error(e) for e in c.get("errors") or [])))
    return Table(("Flash budget", "RAM budget", "Seeds", "Fits", f"{_title(doc)} on target", "Flash used / free",
                  "RAM used / free", "Latency (est.)", "Error"), tuple(rows))


def blocks(doc: dict) -> list:
    s = doc.get("summary") or {}
    content = [Heading(1, f"tinyprune sweep: {doc.get('model') or NA} on {doc.get('dataset') or NA}"),
               Para(headline(doc), "good" if not s.get("failed") else "bad"),
               Para(recommendation_text(doc)), Para(knee_text(doc)),
               Heading(2, f"{_title(doc)} against the flash budget"),
               Image("accuracy_vs_flash.png", f"{_name(doc)} on the target against the flash budget, Pareto front "
                                              "marked"),
               Para("Each marker is one board and budget (the mean over its seeds; small dots: single seeds). The "
                    f"Pareto front joins the budgets that no smaller budget matches in {_name(doc)}. "
                    + _measured(doc), "note")]
    front = set(s.get("pareto") or [])
    content.append(Table(("On the front", "Board", "Flash budget", "RAM budget", f"{_title(doc)} (mean)"),
                         tuple(("yes" if c["key"] in front else "", c["board"], _size(c["flash_budget_bytes"]),
                                _size(c["ram_budget_bytes"]), _value(doc, _config_value(c)))
                               for c in sorted(_configs(doc), key=lambda c: (c["flash_budget_bytes"], c["key"])))))
    content.append(Heading(2, "Fits per board, with headroom"))
    board_info = {r["board"]: r for r in doc.get("rows") or []}
    for board in _boards(doc):
        b = board_info[board]
        content += [Heading(3, f"{board} ({b['mcu']}, {b['core']}, {b['clock_hz'] / 1e6:g} MHz; flash "
                               f"{_size(b['board_flash_bytes'])}, RAM {_size(b['board_ram_bytes'])})"),
                    _board_table(doc, board)]
    content += [Image("headroom.png", "free flash and RAM per board and budget"),
                Para("Latency is an estimate from instruction counts: QEMU -icount counts instructions, not cycles, "
                     "and latency = instructions / the board's clock.", "note")]
    failed = [r for r in doc.get("rows") or [] if r["status"] != "ok"]
    if failed:
        content += [Heading(2, "Failed points"),
                    Table(("Point", "Kind", "Error"), tuple((r["id"], r.get("error_kind") or NA, r.get("error") or NA)
                                                            for r in failed))]
    content += [Heading(2, "All points"),
                Table(("Point", "Fits", _title(doc), "Flash", "RAM", "Instructions / inference", "Latency", "Params",
                       "Seconds"),
                      tuple((r["id"], "yes" if r["fits"] else "no" if r["fits"] is not None else NA,
                             _value(doc, _on_target(r)), fmt_b(r["flash_bytes"]), fmt_b(r["ram_bytes"]),
                             fmt_count(r["instructions_per_inference"]),
                             NA if r["estimated_latency_ms"] is None else f"{r['estimated_latency_ms']:,.3f} ms",
                             fmt_count(r["params"]), fmt_count(_point_run(doc, r).get("seconds"), 1))
                            for r in doc.get("rows") or [])),
                Heading(2, "Run"),
                Items(tuple((k, str(v)) for k, v in (("executor", _run(doc).get("executor", {}).get("description")),
                                                     ("created", _run(doc).get("created")),
                                                     ("seconds", _run(doc).get("seconds")),
                                                     ("points resumed from an earlier run", _run(doc).get("resumed")),
                                                     ("stage cache", _run(doc).get("cache_dir")),
                                                     ("per-point deploy directories", "points/<point>/"))))]
    return content


def _run(doc: dict) -> dict:
    return doc.get("run") if isinstance(doc.get("run"), dict) else {}


def _point_run(doc: dict, row: dict) -> dict:
    return (_run(doc).get("points") or {}).get(row["id"]) or {}


def _samples(doc: dict) -> str:
    return str((doc.get("config") or {}).get("deploy", {}).get("samples", NA))


def _measured(doc: dict) -> str:
    if _metric(doc) == "accuracy":
        return f"Accuracy is measured on the emulated board over {_samples(doc)} test samples."
    return (f"{_name(doc)} (lower is better) is computed on the host from TFLite Micro's outputs over the test set; "
            f"the emulated board's outputs match them byte for byte on {_samples(doc)} test samples (a point that "
            "does not is failed).")


def _config_value(c: dict):
    """A configuration's mean metric (sweeps before metric_mean: its mean accuracy)."""
    return c.get("metric_mean", c.get("accuracy_mean"))


# ---- plots ----------------------------------------------------------------------------------------

def _style(doc: dict) -> dict[str, tuple[str, str]]:
    return {b: (PALETTE[i % len(PALETTE)], MARKERS[i % len(MARKERS)]) for i, b in enumerate(_boards(doc))}


def _plot_accuracy(doc: dict):
    fig = new_figure(8.0, 4.6)
    ax = fig.add_subplot()
    accuracy = _metric(doc) == "accuracy"
    scale = 100.0 if accuracy else 1.0
    ax.set_title(f"{_title(doc)} on the target against the flash budget")
    cfgs = _configs(doc)
    scored = [c for c in cfgs if _config_value(c) is not None]
    if not cfgs:
        placeholder(ax, "no points")
        return fig
    style = _style(doc)
    s = doc.get("summary") or {}
    for r in doc.get("rows") or []:
        if r["status"] == "ok" and _on_target(r) is not None:
            color, _ = style[r["board"]]
            ax.scatter([r["flash_budget_bytes"] / 1024], [scale * _on_target(r)], s=10, color=color, alpha=0.5,
                       zorder=2)
    for c in scored:
        color, marker = style[c["board"]]
        ax.scatter([c["flash_budget_bytes"] / 1024], [scale * _config_value(c)], s=55, color=color, marker=marker,
                   edgecolors="white", linewidths=0.8, zorder=3, label=c["board"])
    ys = [scale * _config_value(c) for c in scored] or ([0.0, 100.0] if accuracy else [0.0, 1.0])
    spread = max(ys) - min(ys)
    pad = max(spread * 0.3, 2.0) if accuracy else max(spread * 0.3, abs(max(ys)) * 0.1, 1e-6)
    low, high = max(0.0, min(ys) - pad), max(ys) + pad
    bad = low if accuracy else high  # where a point without a value goes: the bad end of the axis
    for c in cfgs:
        if _config_value(c) is None:
            ax.scatter([c["flash_budget_bytes"] / 1024], [bad], marker="x", s=45, color="#777777", zorder=3,
                       label="does not fit / failed (any board)")
    by_key = {c["key"]: c for c in cfgs}
    front = [by_key[k] for k in s.get("pareto") or [] if k in by_key]
    if front:
        xs = [c["flash_budget_bytes"] / 1024 for c in front]
        yv = [scale * _config_value(c) for c in front]
        ax.step(xs, yv, where="post", color="black", lw=1.2, zorder=1, label="Pareto front")
        ax.scatter(xs, yv, s=120, facecolors="none", edgecolors="black", linewidths=1.2, zorder=4)
    k = s.get("knee") or {}
    if k.get("config") in by_key:
        c = by_key[k["config"]]
        ax.scatter([c["flash_budget_bytes"] / 1024], [scale * _config_value(c)], marker="*", s=300, color="#F2C12E",
                   edgecolors="black", zorder=5, label=f"knee ({_size(c['flash_budget_bytes'])})")
    rec = s.get("recommendation") or {}
    bar = rec.get("threshold", rec.get("min_accuracy"))
    if bar is not None:
        ax.axhline(scale * bar, ls="--", color="#C44E52", lw=1,
                   label=f"{'minimum' if accuracy else 'maximum'} {_name(doc)} {_value(doc, bar)}")
    xs_all = [c["flash_budget_bytes"] / 1024 for c in cfgs]
    if max(xs_all) > 8 * min(xs_all):
        ax.set_xscale("log")
    if accuracy:
        ax.set_ylim(low - 1.0, max(ys) + max(spread * 0.15, 1.0))
    else:
        ax.set_ylim(max(0.0, low - pad * 0.2), high + pad * 0.2)
    ax.set_xlabel("flash budget for model + runtime (KiB)")
    ax.set_ylabel("accuracy on the target (%)" if accuracy else f"{_name(doc)} (lower is better)")
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles))
    fig.legend(unique.values(), unique.keys(), loc="outside right upper", fontsize=7, frameon=False)
    return fig


def _plot_headroom(doc: dict):
    cfgs = _configs(doc)
    fig, ax = rows_figure(8.0, 0.42, len(cfgs), "Headroom: free flash and RAM, % of the budget (smallest over seeds)",
                          "no points")
    if not cfgs:
        return fig
    ys = range(len(cfgs))
    for y, c in zip(ys, cfgs):
        if not c["fits"]:
            why = f": {short_error(c['errors'][0], 90)}" if c.get("errors") else ""
            ax.text(1, y, f"does not fit{why}", va="center", fontsize=7, color="#C44E52")
            continue
        flash = 100 * (c["flash_free_bytes_min"] or 0) / c["flash_budget_bytes"]
        ram = 100 * (c["ram_free_bytes_min"] or 0) / c["ram_budget_bytes"]
        ax.barh(y - 0.2, flash, height=0.4, color="#4C72B0", label="flash free")
        ax.barh(y + 0.2, ram, height=0.4, color="#55A868", label="RAM free")
        ax.text(flash, y - 0.2, f" {flash:.1f} %", va="center", fontsize=7)
        ax.text(ram, y + 0.2, f" {ram:.1f} %", va="center", fontsize=7)
    ax.set_yticks(list(ys), [f"{c['board']}\nflash {_size(c['flash_budget_bytes'])}, RAM "
                             f"{_size(c['ram_budget_bytes'])}" for c in cfgs], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(0, 110)
    ax.set_xlabel("free, % of the budget")
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles))
    if unique:
        ax.legend(unique.values(), unique.keys(), loc="lower right", fontsize=8)
    return fig


PLOTTERS = {"accuracy_vs_flash.png": _plot_accuracy, "headroom.png": _plot_headroom}


def plots(doc: dict) -> dict[str, bytes]:
    return {name: draw_png(PLOTTERS[name], doc) for name in PLOTS}


# ---- entry points ---------------------------------------------------------------------------------

def render_files(doc: dict) -> dict[str, bytes]:
    """sweep.md, sweep.html and the plots, as {name: bytes}."""
    images = plots(doc)
    content = blocks(doc)
    return {"sweep.md": to_markdown(content).encode("utf-8"), "sweep.html": to_html(content, images).encode("utf-8"),
            **images}


def render(doc: dict, out_dir: Path) -> list[str]:
    """Write the reports into ``out_dir`` (each file atomically); returns their names."""
    from tinyprune.outdir import write_file_atomic

    files = render_files(doc)
    for name, data in files.items():
        write_file_atomic(Path(out_dir) / name, data)
    return list(files)


def summary_lines(doc: dict) -> list[str]:
    """The end of the terminal output: a table of the points, then the recommendation and the knee."""
    rows = doc.get("rows") or []
    header = ("board", "flash budget", "RAM budget", "seed", "fits", _name(doc), "flash free", "RAM free",
              "instr/inference", "latency (est.)")
    table = [header]
    for r in rows:
        ok = r["status"] == "ok"
        table.append((r["board"], _size(r["flash_budget_bytes"]), _size(r["ram_budget_bytes"]), str(r["seed"]),
                      "yes" if ok else "NO", _value(doc, _on_target(r)) if ok else "-",
                      fmt_pct(r["flash_free_bytes"], r["flash_budget_bytes"]) if ok else "-",
                      fmt_pct(r["ram_free_bytes"], r["ram_budget_bytes"]) if ok else "-",
                      fmt_count(r["instructions_per_inference"]) if ok else "-",
                      f"{r['estimated_latency_ms']:,.2f} ms" if ok and r["estimated_latency_ms"] is not None else "-"))
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    lines = ["Sweep summary: " + headline(doc)]
    lines += ["  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in table]
    failed = [r for r in rows if r["status"] != "ok"]
    for r in failed:
        lines.append(f"  failed: {r['id']}: {r.get('error_kind')}: {short_error(r.get('error'))}")
    lines += ["", recommendation_text(doc), knee_text(doc)]
    return lines
