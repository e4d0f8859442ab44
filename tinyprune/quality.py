"""The model's metric on the target and the bar a user sets for it.

    from tinyprune.quality import gate, metric_on_target
    value = metric_on_target(deploy_report)            # accuracy on the board, or the MSE it matched
    result = gate("accuracy", value, 0.95)             # {"option": "--min-accuracy", ..., "passed": bool}

Classifiers are scored by accuracy (higher is better, bar: --min-accuracy), the autoencoders by
their reconstruction MSE (lower is better, bar: --max-mse). ``deploy`` and ``verify`` fail a run
below the bar; ``sweep`` recommends the cheapest board that meets it.
"""

from __future__ import annotations

import numbers

NA = "n/a"  # a figure that is missing, in every report
THRESHOLD_OPTIONS = {"accuracy": "--min-accuracy", "mse": "--max-mse"}  # the bar's option, per metric


def real_number(value) -> float | None:
    """A real number, or None for anything else (None, text, bools, NaN)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or value != value:
        return None
    return value


def fmt_metric(value, metric: str) -> str:
    """Accuracy as a percentage, an error (MSE) to five decimals; NA for no number."""
    value = real_number(value)
    if value is None:
        return NA
    return f"{100 * value:.2f} %" if metric == "accuracy" else f"{value:.5f}"


def metric_name(metric: str) -> str:
    return "accuracy" if metric == "accuracy" else metric.upper()


def metric_title(metric: str) -> str:
    return "Accuracy" if metric == "accuracy" else metric.upper()


def higher_is_better(metric: str) -> bool:
    """Accuracy: higher is better; an error such as the autoencoders' MSE: lower is."""
    return metric == "accuracy"


def meets(metric: str, value: float, threshold: float) -> bool:
    if higher_is_better(metric):
        return value >= threshold - 1e-12
    return value <= threshold + 1e-12


def metric_on_target(report: dict) -> float | None:
    """A deploy report's metric on the target: accuracy is measured there; an error (MSE) is
    computed on the host, from TFLite Micro's outputs, which the target's match byte for byte when
    the deploy is bit-exact (else there is none)."""
    acc = report["accuracy"]
    if report["metric"] == "accuracy":
        return acc["target"]
    return acc.get("tflm_host") if report["bit_exact"] else None


def gate(metric: str, value: float | None, threshold: float) -> dict:
    """The check of ``value`` against the user's bar, as a report records it (``text`` says it)."""
    check = {"metric": metric, "option": THRESHOLD_OPTIONS.get(metric, "threshold"), "threshold": threshold,
             "measured": value, "passed": value is not None and meets(metric, value, threshold)}
    return check | {"text": _gate_text(check)}


def gate_line(check: dict) -> str:
    """The check for a summary line: its text, flagged when missed."""
    return ("" if check["passed"] else "MISSED: ") + check["text"]


def _gate_text(check: dict) -> str:
    """``accuracy 93.50 % is below --min-accuracy 95.00 %`` and the like."""
    metric = check["metric"]
    name, shown = metric_name(metric), fmt_metric(check["measured"], metric)
    bar = fmt_metric(check["threshold"], metric)
    if check["passed"]:
        relation = ">=" if higher_is_better(metric) else "<="
        return f"{name} {shown} {relation} {check['option']} {bar}: passed"
    return f"{name} {shown} is {'below' if higher_is_better(metric) else 'above'} {check['option']} {bar}"
