"""The human-readable reports of one ``tinyprune deploy``: Markdown, self-contained HTML, plots.

    from tinyprune.deploy_report import render, summary_lines
    names = render(report, out_dir)    # report.md, report.html, accuracy/memory/channels/search.png
    lines = summary_lines(report)      # what the CLI prints at the end

``report`` is the dict ``tinyprune.deploy`` writes to ``report.json``. The content is built once
as a list of blocks (``tinyprune.report_doc``: headings, paragraphs, tables, images) and written
both as Markdown and as HTML, so the two always say the same. Missing or ``None`` figures show as "n/a". Plots are drawn
with matplotlib's Agg canvas at a fixed size and resolution, with fixed fonts and no metadata, so
the same report gives byte-identical PNGs.
"""

from __future__ import annotations

from pathlib import Path

from tinyprune.quality import NA, fmt_metric, metric_name, metric_title, real_number
from tinyprune.report_doc import (Heading, Image, Items, Para, Table, draw_png, fmt_b, fmt_bytes, fmt_change,
                                  fmt_count, fmt_pct, new_figure, placeholder, rows_figure, to_html, to_markdown)
from tinyprune.sizes import format_size

PLOTS = ("accuracy.png", "memory.png", "channels.png", "search.png", "speed.png")
LATENCY_CAVEAT = ("an estimate from instruction counts: QEMU -icount counts instructions, not cycles "
                  "(no pipeline, caches or flash wait states), and latency = instructions / clock")
LATENCY_CAVEAT_SHORT = "an estimate from instruction counts (QEMU -icount), not measured cycles"
STAGES = (  # accuracy key, label, where it was measured ({n}: samples run on the target)
    ("float", "float (torch)", "test set"),
    ("pruned", "pruned (torch)", "test set"),
    ("int8_tflite", "int8 TFLite", "test set, TF Lite interpreter"),
    ("tflm_host", "TFLite Micro (host)", "test set, tflite_micro interpreter"),
    ("target", "on target", "{n} test samples, run on the emulated board"),
    ("target_host_tflm_same_samples", "TFLite Micro (host), same samples", "the same {n} test samples"),
)
PLOTTED_STAGES = (("float", "float\n(torch)"), ("pruned", "pruned\n(torch)"), ("int8_tflite", "int8\nTFLite"),
                  ("tflm_host", "TFLite Micro\n(host)"), ("target", "on target\n(QEMU)"))
COLORS = {"runtime code": "#4C72B0", "model (.tflite)": "#DD8452", "other code and data": "#8172B3",
          "arena": "#55A868", "other static RAM": "#937860", "stack reserve": "#C44E52",
          "reserved for the application": "#B0B0B0", "free": "#E8F0E0"}
PHASE_COLORS = {"start": "#4C72B0", "prune": "#DD8452", "final": "#55A868", "scratch": "#8172B3"}


# ---- values ---------------------------------------------------------------------------------------

def _dig(d, *keys):
    """``d[k1][k2]...``, or None where a level is missing or not a dict."""
    for key in keys:
        if not isinstance(d, dict):
            return None
        d = d.get(key)
    return d


def _sub(a, b) -> float | None:
    a, b = real_number(a), real_number(b)
    return None if a is None or b is None else a - b


def _metric(report: dict) -> str:
    return report.get("metric") or _dig(report, "prune", "metric") or "accuracy"


def _budget(report: dict, memory: str) -> float | None:
    value = real_number(_dig(report, "budget", f"{memory}_bytes"))
    return value if value is not None else real_number(_dig(report, "sizes", f"{memory}_budget_bytes"))


def _clock_mhz(report: dict) -> str:
    hz = real_number(report.get("clock_hz"))
    return NA if not hz else f"{hz / 1e6:g} MHz"


def _samples(report: dict) -> str:
    return _dig(report, "verify", "samples_from") or f"{report.get('samples') or NA} test samples"


def margin_text(used, budget) -> str:
    """``40,123 B of 393,216 B (353,093 B free, 89.8 % of the budget)``, or over by how much."""
    used, budget = real_number(used), real_number(budget)
    if used is None or budget is None:
        return f"{fmt_bytes(used)} of a {fmt_bytes(budget)} budget"
    free = budget - used
    tail = (f"{int(free):,} B free, {fmt_pct(free, budget)} of the budget" if free >= 0
            else f"OVER by {int(-free):,} B, {fmt_pct(-free, budget)} of the budget")
    return f"{int(used):,} B of {int(budget):,} B ({tail})"


# ---- memory breakdown (shared by the table and the plot) -----------------------------------------

def memory_parts(report: dict) -> dict[str, tuple[list[tuple[str, float | None]], float | None]]:
    """{"Flash": ([(part, bytes)], board total), "RAM": ...}; parts sum to the total when all known."""
    s = report.get("sizes") or {}
    bm = report.get("board_memory") or {}
    arena = real_number(s.get("arena_bytes"))
    other_ram = _sub(s.get("static_ram_bytes"), arena)
    flash = [("runtime code", s.get("runtime_code_bytes")), ("model (.tflite)", s.get("model_bytes")),
             ("other code and data", s.get("other_code_bytes")),
             ("reserved for the application", bm.get("reserved_flash_bytes")), ("free", s.get("flash_free_bytes"))]
    ram = [("arena", arena), ("other static RAM", other_ram), ("stack reserve", s.get("stack_reserved_bytes")),
           ("reserved for the application", bm.get("reserved_ram_bytes")), ("free", s.get("ram_free_bytes"))]
    return {"Flash": ([(k, real_number(v)) for k, v in flash], real_number(bm.get("flash_bytes"))),
            "RAM": ([(k, real_number(v)) for k, v in ram], real_number(bm.get("ram_bytes")))}


# ---- content ----------------------------------------------------------------------------------------

def _headline(report: dict) -> list:
    fits = report.get("fits")
    board = report.get("board") or NA
    s = report.get("sizes") or {}
    word = "yes" if fits else "NO" if fits is not None else NA
    blocks = [Para(f"Fits {board}: {word}. Flash {margin_text(s.get('flash_bytes'), _budget(report, 'flash'))}; "
                   f"RAM {margin_text(s.get('ram_bytes'), _budget(report, 'ram'))}.", "good" if fits else "bad")]
    exact = report.get("bit_exact")
    if exact is not None:
        blocks.append(Para(f"Target outputs bit-exact with TFLite Micro on the host: {'yes' if exact else 'NO'} "
                           f"({report.get('mismatches', NA)} of {report.get('samples', NA)} samples differ)."))
    check = report.get("quality_gate")
    if check:
        blocks.append(Para(f"Bar: {check['text']}.", "good" if check["passed"] else "bad"))
    blocks.append(Para(f"Model {report.get('model') or NA} ({report.get('task') or NA}), dataset "
                       f"{report.get('dataset') or NA}; board {board} ({report.get('mcu') or NA}, "
                       f"{report.get('core') or NA}, {_clock_mhz(report)}), emulated on QEMU "
                       f"{report.get('qemu_machine') or NA}; budget from {_dig(report, 'budget', 'source') or NA}; "
                       f"tinyprune {report.get('tinyprune_version') or NA}, "
                       f"{_dig(report, 'run', 'created') or report.get('created') or NA}."))
    return blocks


def _accuracy_blocks(report: dict) -> list:
    metric = _metric(report)
    acc = report.get("accuracy") or {}
    n = report.get("samples") or NA
    rows = []
    for key, label, where in STAGES:
        note = where.format(n=n)
        if key == "target" and acc.get(key) is None and metric != "accuracy":
            note += f" ({metric} is computed on the host; the target's outputs are compared byte for byte)"
        rows.append((label, fmt_metric(acc.get(key), metric), note))
    return [Heading(2, f"{metric_title(metric)} per stage"),
            Table(("Stage", metric_title(metric), "Measured on"), tuple(rows)),
            Image("accuracy.png", f"{metric_name(metric)} at each stage")]


def _size_blocks(report: dict) -> list:
    s = report.get("sizes") or {}
    bm = report.get("board_memory") or {}
    summary = []
    for name, key in (("Flash", "flash"), ("RAM", "ram")):
        used, budget = s.get(f"{key}_bytes"), _budget(report, key)
        free = _sub(budget, used)
        summary.append((name, fmt_bytes(used), fmt_bytes(budget), f"{fmt_bytes(free)}, {fmt_pct(free, budget)}",
                        fmt_bytes(bm.get(f"{key}_bytes"))))
    parts = []
    for memory, (segments, total) in memory_parts(report).items():
        for label, value in segments:
            if label == "stack reserve":
                label = f"stack reserve (high-water mark {fmt_bytes(s.get('stack_bytes'))})"
            parts.append((memory, label, fmt_bytes(value), fmt_pct(value, total)))
    blocks = [Heading(2, "Memory vs budget"),
              Table(("", "Used", "Budget", "Free (margin)", "Board total"), tuple(summary)),
              Table(("Memory", "Part", "Bytes", "Of the board's total"), tuple(parts))]
    tflm = real_number(s.get("tflm_arena_bytes"))
    if tflm:
        blocks.append(Para(f"TFLite Micro needs a {fmt_bytes(tflm)} arena for this model on the host (about "
                           f"{fmt_bytes(s.get('tflm_arena_bytes_32bit_estimate'))} on a 32-bit core); tinyprune's "
                           f"runtime plans it into {fmt_bytes(s.get('arena_bytes'))}."))
    return blocks + [Image("memory.png", "flash and RAM against the board's total")]


def _speed_blocks(report: dict) -> list:
    sp = report.get("speed") or {}
    rows = (("Instructions per inference (mean)", fmt_count(sp.get("instructions_per_inference"))),
            ("Instructions per inference (max)", fmt_count(_dig(report, "verify", "instructions_per_inference_max"))),
            ("MACs per inference", fmt_count(sp.get("macs_per_inference"))),
            ("Instructions per MAC", fmt_count(sp.get("instructions_per_mac"), 2)),
            (f"Estimated latency at {_clock_mhz(report)}", f"{fmt_count(sp.get('estimated_latency_ms'), 3)} ms"),
            ("Instructions at init, once (tpr_init: checks, arena plan)", fmt_count(sp.get("init_instructions"))))
    blocks = [Heading(2, "Speed"), Table(("", "Value"), rows),
              Para(f"The latency is {LATENCY_CAVEAT}. Measured over {_samples(report)}.", "note")]
    ops = sp.get("by_operator") or []
    if ops:
        blocks += [Heading(3, "By operator"),
                   Table(("#", "Operator", "MACs", "Instructions", "Per MAC", "Share"),
                         tuple((str(r.get("index")), str(r.get("op")), fmt_count(r.get("macs")),
                                fmt_count(r.get("instructions")), fmt_count(r.get("instructions_per_mac"), 2),
                                fmt_pct(r.get("share"), 1)) for r in ops)),
                   Para("Each operator timed on the target by a build whose runtime calls a hook at every "
                        "operator boundary (tinyprune verify --profile), on a few of the samples.", "note"),
                   Image("speed.png", "instructions per inference of each operator")]
    return blocks


def _channel_blocks(report: dict) -> list:
    rows = []
    for layer in _dig(report, "prune", "layers") or []:
        note = "protected" if layer.get("protected") else "" if layer.get("prunable") else "not prunable"
        rows.append((str(layer.get("name", NA)), str(layer.get("op", NA)),
                     fmt_change(layer.get("channels_before"), layer.get("channels_after")),
                     fmt_change(layer.get("params_before"), layer.get("params_after")),
                     fmt_change(layer.get("flash_bytes_before"), layer.get("flash_bytes_after")),
                     fmt_change(layer.get("activation_bytes_before"), layer.get("activation_bytes_after")), note))
    if not rows:
        return [Heading(2, "Channels per layer"), Para("No per-layer data in this report.")]
    return [Heading(2, "Channels per layer"),
            Table(("Layer", "Op", "Output channels", "Params", "Flash bytes", "Activation bytes", "Note"),
                  tuple(rows)),
            Image("channels.png", "output channels per layer before and after pruning")]


def _search_blocks(report: dict) -> list:
    prune = report.get("prune") or {}
    steps = prune.get("search_steps") or []
    metric = _metric(report)
    chosen = _chosen_index(prune)
    how = ("the model already fit: passed through unchanged" if prune.get("passed_through")
           else f"step {chosen} chosen" if chosen is not None else "no step chosen")
    rows = tuple((str(st.get("step", i)), str(st.get("phase", NA)), fmt_count(st.get("params")),
                  fmt_bytes(st.get("model_bytes")), fmt_bytes(st.get("flash_estimate_bytes")),
                  fmt_bytes(st.get("ram_estimate_bytes")), fmt_metric(st.get(f"val_{metric}"), metric),
                  st.get("over_budget") or "", "chosen" if i == chosen else "") for i, st in enumerate(steps))
    return [Heading(2, "Pruning search"),
            Para(f"{len(steps)} step(s) recorded; {how}. Pruning budget: flash "
                 f"{fmt_bytes(prune.get('budget_flash_bytes'))}, RAM {fmt_bytes(prune.get('budget_ram_bytes'))} "
                 f"({prune.get('budget_source') or NA}). Sizes are the cost model's estimates."),
            Table(("Step", "Phase", "Params", ".tflite (est.)", "Flash (est.)", "RAM (est.)",
                   f"Validation {metric_name(metric)}", "Over budget", "Chosen"), rows),
            Image("search.png", f"validation {metric_name(metric)} against estimated size at each search step")]


def _attempt_blocks(report: dict) -> list:
    cached = (report.get("run") or {}).get("cached_stages") or []
    rows = tuple((str(a.get("number", NA)),
                  f"{fmt_bytes(a.get('prune_flash_bytes'))} / {fmt_bytes(a.get('prune_ram_bytes'))}",
                  f"{fmt_bytes(a.get('flash_estimate_bytes'))} / {fmt_bytes(a.get('ram_estimate_bytes'))}",
                  f"{fmt_bytes(a.get('flash_bytes'))} / {fmt_bytes(a.get('ram_bytes'))}",
                  "yes" if a.get("fits") else "no",
                  ", ".join(a.get("cached") or (cached[i] if i < len(cached) else [])) or "none",
                  str(a.get("note") or "")) for i, a in enumerate(report.get("attempts") or []))
    return [Heading(2, "Attempts"),
            Table(("#", "Pruning budget flash / RAM", "Estimated flash / RAM", "Measured flash / RAM", "Fits",
                   "From the cache", "Note"), rows)]


def integration_items(report: dict) -> tuple[tuple[str, str], ...]:
    """(build system, line) pairs from the report's ``integration``: a dict of lists, or a list."""
    lines = report.get("integration") or {}
    if isinstance(lines, dict):
        names = {"cmake": "CMake", "make": "Make"}
        return tuple((names.get(k, str(k)), str(line)) for k, v in lines.items()
                     for line in ([v] if isinstance(v, str) else v or []))
    return tuple(("", str(line)) for line in lines)


def _file_blocks(report: dict) -> list:
    files = tuple(("", str(name)) for name in report.get("files") or [])
    blocks = [Heading(2, "Files"), Items(files) if files else Para("No files listed.")]
    build = integration_items(report)
    blocks += [Heading(2, "Use it in your firmware build"),
               Items(build) if build else Para("No build-integration lines in this report.")]
    return blocks


def blocks(report: dict) -> list:
    """The whole report as blocks, in order."""
    title = f"tinyprune deploy: {report.get('model') or NA} on {report.get('board') or NA}"
    return [Heading(1, title), *_headline(report), *_accuracy_blocks(report), *_size_blocks(report),
            *_speed_blocks(report), *_channel_blocks(report), *_search_blocks(report), *_attempt_blocks(report),
            *_file_blocks(report)]


# ---- plots ----------------------------------------------------------------------------------------

def _plot_accuracy(report: dict):
    metric = _metric(report)
    acc = report.get("accuracy") or {}
    scale = 100.0 if metric == "accuracy" else 1.0
    fig = new_figure(6.4, 3.6)
    ax = fig.add_subplot()
    values = [(real_number(acc.get(k)), i) for i, (k, _) in enumerate(PLOTTED_STAGES)]
    known = [(i, v * scale) for v, i in values if v is not None]
    ax.set_title(f"Test {metric_name(metric)} at each stage")
    ax.set_xticks(range(len(PLOTTED_STAGES)), [label for _, label in PLOTTED_STAGES])
    ax.set_xlim(-0.5, len(PLOTTED_STAGES) - 0.5)
    ax.set_ylabel("accuracy (%)" if metric == "accuracy" else f"{metric.upper()} (lower is better)")
    if not known:
        placeholder(ax, "no accuracy figures in this report")
        return fig
    ax.plot([i for i, _ in known], [v for _, v in known], "-o", color="#4C72B0", zorder=3, label="test set")
    same = real_number(acc.get("target_host_tflm_same_samples"))
    if same is not None:
        ax.plot([len(PLOTTED_STAGES) - 1], [same * scale], "D", mfc="none", mec="#C44E52", ms=9, zorder=4,
                label=f"TFLite Micro (host) on the same {report.get('samples') or NA} samples")
    for i, v in known:
        ax.annotate(f"{v:.2f} %" if metric == "accuracy" else f"{v:.5f}", (i, v), textcoords="offset points",
                    xytext=(0, 8), ha="center")
    for v, i in values:
        if v is None:
            ax.text(i, 0.5, NA, transform=ax.get_xaxis_transform(), ha="center", color="#888888")
    ys = [v for _, v in known] + ([same * scale] if same is not None else [])
    pad = max((max(ys) - min(ys)) * 0.3, 1.0 if metric == "accuracy" else abs(max(ys)) * 0.1 + 1e-6)
    ax.set_ylim(max(0.0, min(ys) - pad), max(ys) + pad)
    ax.legend(loc="lower left", fontsize=8)
    return fig


def _memory_bar(ax, row: int, segments, total: float | None) -> None:
    known = [(label, v) for label, v in segments if v is not None]
    whole = total or sum(max(v, 0) for _, v in known) or 1
    left = 0.0
    for label, value in known:
        width = 100.0 * max(value, 0) / whole
        ax.barh(row, width, left=left, height=0.6, color=COLORS[label], edgecolor="white", label=label)
        if width >= 9:
            ax.text(left + width / 2, row, format_size(int(value)), ha="center", va="center", fontsize=8)
        left += width
    ax.plot([100, 100], [row - 0.4, row + 0.4], color="black", lw=1.5)


def _plot_memory(report: dict):
    fig = new_figure(8.0, 3.4)
    ax = fig.add_subplot()
    parts = memory_parts(report)
    s = report.get("sizes") or {}
    ticks = []
    for row, (name, (segments, total)) in enumerate(parts.items()):
        _memory_bar(ax, row, segments, total)
        key = name.lower()
        used, budget = s.get(f"{key}_bytes"), _budget(report, key)
        board = format_size(int(total)) if total else NA
        ticks.append(f"{name}\n{fmt_pct(used, budget)} of budget used\nboard {board}")
    ax.set_yticks(range(len(parts)), ticks)
    ax.invert_yaxis()
    ax.set_xlim(0, 105)
    ax.set_xlabel("% of the board's memory (black tick: the board's total)")
    ax.set_title(f"Flash and RAM on {report.get('board') or NA}")
    unique = _unique_legend(ax)
    order = [label for label in COLORS if label in unique]  # flash parts, RAM parts, reserved, free
    if not order:
        placeholder(ax, "no size figures in this report")
        return fig
    ncol = (len(order) + 1) // 2
    order = [order[r * ncol + c] for c in range(ncol) for r in range(2) if r * ncol + c < len(order)]
    fig.legend([unique[k] for k in order], order, loc="outside lower center", ncol=ncol, fontsize=8, frameon=False)
    return fig


def _unique_legend(ax) -> dict:
    """{label: handle}, the first handle of each label."""
    handles, labels = ax.get_legend_handles_labels()
    unique: dict = {}
    for label, handle in zip(labels, handles):
        unique.setdefault(label, handle)
    return unique


def _plot_channels(report: dict):
    layers = _dig(report, "prune", "layers") or []
    fig, ax = rows_figure(7.0, 0.45, len(layers), "Output channels per layer", "no per-layer data in this report")
    if not layers:
        return fig
    ys = range(len(layers))
    before = [real_number(layer.get("channels_before")) or 0 for layer in layers]
    after = [real_number(layer.get("channels_after")) or 0 for layer in layers]
    ax.barh([y - 0.2 for y in ys], before, height=0.4, color="#B8C7E0", label="before")
    ax.barh([y + 0.2 for y in ys], after, height=0.4, color="#4C72B0", label="after")
    for y, b, a in zip(ys, before, after):
        ax.text(max(a, b), y, f"  {int(b)} → {int(a)}", va="center", fontsize=8)
    names = [f"{layer.get('name', NA)} ({layer.get('op', '?')})" + (" *" if layer.get("protected") else "")
             for layer in layers]
    ax.set_yticks(list(ys), names)
    ax.invert_yaxis()
    ax.set_xlim(0, max(before + after + [1]) * 1.25)
    ax.set_xlabel("output channels (* protected: never pruned)")
    ax.legend(loc="lower right", fontsize=8)
    return fig


def _plot_speed(report: dict):
    ops = _dig(report, "speed", "by_operator") or []
    fig, ax = rows_figure(7.0, 0.32, len(ops), "Instructions per inference, by operator (on the target)",
                          "operators not timed (deploy --no-profile)")
    if not ops:
        return fig
    ys = range(len(ops))
    counts = [real_number(r.get("instructions")) or 0 for r in ops]
    kinds = sorted({str(r.get("op")) for r in ops})
    palette = ["#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860", "#DA8BC3", "#8C8C8C"]
    color = {k: palette[i % len(palette)] for i, k in enumerate(kinds)}
    for y, r, n in zip(ys, ops, counts):
        ax.barh(y, n, height=0.7, color=color[str(r.get("op"))], label=str(r.get("op")))
        ipm = r.get("instructions_per_mac")
        ax.text(n, y, f"  {fmt_pct(r.get('share'), 1)}" + (f", {ipm:.2f}/MAC" if ipm is not None else ""),
                va="center", fontsize=7)
    ax.set_yticks(list(ys), [f"#{r.get('index')} {r.get('op')}" for r in ops], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlim(0, max(counts + [1]) * 1.3)
    ax.set_xlabel("instructions per inference (QEMU -icount)")
    handles = _unique_legend(ax)
    ax.legend(handles.values(), handles.keys(), loc="lower right", fontsize=7)
    return fig


def _chosen_index(prune: dict) -> int | None:
    steps = prune.get("search_steps") or []
    chosen = prune.get("chosen_step")
    if not isinstance(chosen, int) or isinstance(chosen, bool) or not steps:
        return None
    return chosen if 0 <= chosen < len(steps) else None


def _search_points(report: dict) -> tuple[str, list[tuple[int, dict, float, float]]]:
    """(x key, [(index, step, x bytes, y)]) for the steps that have both figures."""
    steps = _dig(report, "prune", "search_steps") or []
    ykey = f"val_{_metric(report)}"
    xkey = "flash_estimate_bytes" if all(real_number(st.get("flash_estimate_bytes")) is not None for st in steps) \
        else "model_bytes"
    points = [(i, st, real_number(st.get(xkey)), real_number(st.get(ykey))) for i, st in enumerate(steps)]
    return xkey, [p for p in points if p[2] is not None and p[3] is not None]


def _plot_search(report: dict):
    metric = _metric(report)
    scale = 100.0 if metric == "accuracy" else 1.0
    prune = report.get("prune") or {}
    xkey, points = _search_points(report)
    fig = new_figure(8.0, 4.0)
    ax = fig.add_subplot()
    passed = " (passed through: it already fit)" if prune.get("passed_through") else ""
    ax.set_title(f"Pruning search: {len(prune.get('search_steps') or [])} step(s){passed}")
    if not points:
        placeholder(ax, "no search steps with size and validation figures")
        return fig
    xs = [x / 1024 for _, _, x, _ in points]
    ys = [y * scale for _, _, _, y in points]
    ax.plot(xs, ys, "-", color="#999999", lw=0.8, zorder=1)
    for (i, st, _, _), x, y in zip(points, xs, ys):
        phase = str(st.get("phase", "?"))
        over = bool(st.get("over_budget"))
        ax.scatter([x], [y], s=40, zorder=3, label=f"{phase}{' (over budget)' if over else ''}",
                   color="white" if over else PHASE_COLORS.get(phase, "#333333"),
                   edgecolors=PHASE_COLORS.get(phase, "#333333"), linewidths=1.5)
        ax.annotate(str(st.get("step", i)), (x, y), textcoords="offset points", xytext=(5, 4), fontsize=7)
    chosen = _chosen_index(prune)
    measured = real_number(_dig(report, "sizes", "flash_bytes"))
    for (i, st, _, _), x, y in zip(points, xs, ys):
        if i == chosen:
            ax.scatter([x], [y], marker="*", s=260, color="#F2C12E", edgecolors="black", zorder=4,
                       label=f"chosen (step {st.get('step', i)})")
            if measured is not None and xkey == "flash_estimate_bytes":
                ax.scatter([measured / 1024], [y], marker="|", s=300, color="black", zorder=5,
                           label="chosen, flash measured on the target")
    _budget_lines(ax, report, xkey)
    ax.set_xlabel("estimated flash: .tflite + runtime code (KiB)" if xkey == "flash_estimate_bytes"
                  else "estimated .tflite size (KiB)")
    ax.set_ylabel(f"validation {'accuracy (%)' if metric == 'accuracy' else metric.upper() + ' (lower is better)'}")
    unique = _unique_legend(ax)
    fig.legend(unique.values(), unique.keys(), loc="outside right upper", fontsize=7, frameon=False)
    return fig


def _budget_lines(ax, report: dict, xkey: str) -> None:
    if xkey != "flash_estimate_bytes":
        return  # a flash budget is not comparable with the .tflite alone
    prune_budget = real_number(_dig(report, "prune", "budget_flash_bytes"))
    board_budget = _budget(report, "flash")
    if prune_budget is not None:
        ax.axvline(prune_budget / 1024, ls="--", color="#C44E52", lw=1.2,
                   label=f"pruning flash budget {format_size(int(prune_budget))}")
    if board_budget is not None and board_budget != prune_budget:
        ax.axvline(board_budget / 1024, ls=":", color="#555555", lw=1.2,
                   label=f"board flash budget {format_size(int(board_budget))}")


PLOTTERS = {"accuracy.png": _plot_accuracy, "memory.png": _plot_memory, "channels.png": _plot_channels,
            "search.png": _plot_search, "speed.png": _plot_speed}


def plots(report: dict) -> dict[str, bytes]:
    """Every plot as PNG bytes, by file name."""
    return {name: draw_png(PLOTTERS[name], report) for name in PLOTS}


# ---- entry points ---------------------------------------------------------------------------------

def documents(report: dict) -> dict[str, bytes]:
    """report.md, report.html and the PNG plots, as bytes by file name."""
    images = plots(report)
    content = blocks(report)
    return {"report.md": to_markdown(content).encode("utf-8"),
            "report.html": to_html(content, images).encode("utf-8"), **images}


def render(report: dict, out_dir: Path) -> list[str]:
    """Write ``documents(report)`` into ``out_dir``; returns their names."""
    written = documents(report)
    for name, data in written.items():
        (Path(out_dir) / name).write_bytes(data)
    return list(written)


def _latency(speed: dict) -> str:
    ms = real_number(speed.get("estimated_latency_ms"))
    return NA if ms is None else f"~{ms:,.3f} ms"


def _accuracy_lines(report: dict) -> list[str]:
    metric = _metric(report)
    acc = report.get("accuracy") or {}
    chain = " -> ".join(f"{label} {fmt_metric(acc.get(key), metric)}" for key, label in
                        (("float", "float"), ("pruned", "pruned"), ("int8_tflite", "int8 TFLite"),
                         ("tflm_host", "TFLM host"), ("target", "target")))
    lines = [f"  {metric_name(metric):<10} {chain}"]
    same = acc.get("target_host_tflm_same_samples")
    if same is not None or acc.get("target") is not None:
        lines.append(f"             target on {report.get('samples') or NA} test samples; TFLite Micro on the host "
                     f"{fmt_metric(same, metric)} on the same samples")
    return lines


def _fit_margins(report: dict) -> str:
    """``flash 30,216 B free (7.7 % of the budget), RAM ...``; "over by" where it is over."""
    s = report.get("sizes") or {}
    parts = []
    for name, key in (("flash", "flash"), ("RAM", "ram")):
        budget = _budget(report, key)
        free = _sub(budget, s.get(f"{key}_bytes"))
        if free is None:
            parts.append(f"{name} margin {NA}")
        elif free >= 0:
            parts.append(f"{name} {int(free):,} B free ({fmt_pct(free, budget)} of the budget)")
        else:
            parts.append(f"{name} OVER by {int(-free):,} B ({fmt_pct(-free, budget)} of the budget)")
    return ", ".join(parts)


def summary_lines(report: dict) -> list[str]:
    """The terminal summary of a deploy, one string per line (the CLI adds where the report is)."""
    s = report.get("sizes") or {}
    sp = report.get("speed") or {}
    fits = report.get("fits")
    exact = report.get("bit_exact")
    lines = [f"Deploy summary: {report.get('model') or NA} on {report.get('board') or NA} "
             f"({report.get('mcu') or NA}, {report.get('core') or NA}, {_clock_mhz(report)})",
             f"  fits       {'yes' if fits else 'NO' if fits is not None else NA}: {_fit_margins(report)}",
             f"  flash      {fmt_b(s.get('flash_bytes'))} of {fmt_b(_budget(report, 'flash'))}: "
             f"model {fmt_b(s.get('model_bytes'))}, runtime code {fmt_b(s.get('runtime_code_bytes'))}, "
             f"other {fmt_b(s.get('other_code_bytes'))}",
             f"  RAM        {fmt_b(s.get('ram_bytes'))} of {fmt_b(_budget(report, 'ram'))}: "
             f"arena {fmt_b(s.get('arena_bytes'))}, stack {fmt_b(s.get('stack_bytes'))} used of "
             f"{fmt_b(s.get('stack_reserved_bytes'))} reserved",
             *_accuracy_lines(report),
             f"  bit-exact  {'yes' if exact else 'NO' if exact is not None else NA}: "
             f"{report.get('mismatches', NA)} of {report.get('samples', NA)} target outputs differ from TFLite Micro's",
             f"  speed      {fmt_count(sp.get('instructions_per_inference'))} instructions per inference "
             f"({fmt_count(sp.get('macs_per_inference'))} MACs, "
             f"{fmt_count(sp.get('instructions_per_mac'), 2)} per MAC, built {sp.get('opt_flag', '-Os')})",
             f"  latency    {_latency(sp)} at {_clock_mhz(report)}: "
             f"{LATENCY_CAVEAT_SHORT}"]
    ops = sorted(sp.get("by_operator") or [], key=lambda r: -(real_number(r.get("instructions")) or 0))[:3]
    if ops:
        lines.append("  costliest  " + ", ".join(f"{r.get('op')} #{r.get('index')} {fmt_pct(r.get('share'), 1)}"
                                                 for r in ops) + " of the instructions (report: By operator)")
    attempts = report.get("attempts") or []
    if len(attempts) > 1:
        lines.append(f"  attempts   {len(attempts)} (the pruning budget was tightened after measuring the firmware)")
    check = report.get("quality_gate")
    if check:
        from tinyprune.quality import gate_line  # quality formats with this module's helpers

        lines.append(f"  bar        {gate_line(check)}")
    return lines
