"""What a sweep's rows say: per-configuration figures over the seeds (``Config``), the Pareto
front of the model's metric against the flash budget, its knee, the recommended board
(``summarise``), and ``sweep.csv`` (``rows_csv``)."""

from __future__ import annotations

import io
from dataclasses import dataclass, field

from tinyprune.quality import THRESHOLD_OPTIONS, fmt_metric, higher_is_better, meets, metric_name
from tinyprune.sweep import ROW_FIELDS, size_tag

DEFAULT_ACCURACY_SLACK = 0.01  # without --min-accuracy: the best point's accuracy less one point
DEFAULT_ERROR_SLACK = 0.10  # without --max-mse: the best point's MSE plus 10 %

@dataclass
class Config:
    """One (board, flash budget, RAM budget) over its seeds."""

    board: str
    flash_budget_bytes: int
    ram_budget_bytes: int
    board_cost_bytes: int  # the board's flash + RAM, as listed in boards/
    rows: list[dict] = field(default_factory=list)

    @property
    def key(self) -> str:
        return f"{self.board}_flash-{size_tag(self.flash_budget_bytes)}_ram-{size_tag(self.ram_budget_bytes)}"

    @property
    def fits(self) -> bool:
        """Every seed ran and fits."""
        return bool(self.rows) and all(r["status"] == "ok" and r["fits"] for r in self.rows)

    def _values(self, key: str) -> list[float]:
        return [r[key] for r in self.rows if r["status"] == "ok" and r.get(key) is not None]

    def mean(self, key: str) -> float | None:
        values = self._values(key)
        return sum(values) / len(values) if values else None

    def least(self, key: str) -> float | None:
        values = self._values(key)
        return min(values) if values else None

    @property
    def metric(self) -> str:
        return next((r["metric"] for r in self.rows if r.get("metric")), "accuracy")

    @property
    def accuracy(self) -> float | None:
        return self.mean("accuracy_target") if self.fits else None

    @property
    def value(self) -> float | None:
        """The mean of the metric on the target over the seeds, when every seed fits."""
        return self.mean("metric_target") if self.fits else None

    @property
    def score(self) -> float | None:
        """``value`` made higher-is-better (an error counts negated): what the front, knee and
        recommendation compare."""
        v = self.value
        return None if v is None else v if higher_is_better(self.metric) else -v

    def worst(self) -> float | None:
        """The metric at the worst seed, when every seed fits."""
        values = self._values("metric_target") if self.fits else []
        if not values:
            return None
        return min(values) if higher_is_better(self.metric) else max(values)

    def errors(self) -> list[str]:
        return sorted({r["error"] for r in self.rows if r.get("error")})

    def to_dict(self) -> dict:
        return {"key": self.key, "board": self.board, "flash_budget_bytes": self.flash_budget_bytes,
                "ram_budget_bytes": self.ram_budget_bytes, "board_cost_bytes": self.board_cost_bytes,
                "seeds": [r["seed"] for r in self.rows], "fits": self.fits, "accuracy_mean": self.accuracy,
                "accuracy_min": self.least("accuracy_target") if self.fits else None,
                "metric": self.metric, "metric_mean": self.value, "metric_worst": self.worst(),
                "flash_free_bytes_min": self.least("flash_free_bytes"),
                "ram_free_bytes_min": self.least("ram_free_bytes"),
                "estimated_latency_ms_mean": self.mean("estimated_latency_ms"), "errors": self.errors()}


def configs(rows: list[dict]) -> list[Config]:
    """Rows grouped by (board, flash budget, RAM budget), in the order they first appear."""
    out: dict[tuple, Config] = {}
    for r in rows:
        k = (r["board"], r["flash_budget_bytes"], r["ram_budget_bytes"])
        if k not in out:
            out[k] = Config(r["board"], r["flash_budget_bytes"], r["ram_budget_bytes"],
                            r["board_flash_bytes"] + r["board_ram_bytes"])
        out[k].rows.append(r)
    return list(out.values())


def pareto_front(cfgs: list[Config]) -> list[Config]:
    """Configurations that fit and that no other beats on both counts (a smaller or equal flash
    budget with an equal or better mean metric: higher accuracy, lower MSE), by flash budget."""
    scored = sorted((c for c in cfgs if c.score is not None),
                    key=lambda c: (c.flash_budget_bytes, -c.score, c.board_cost_bytes, c.key))
    front: list[Config] = []
    for c in scored:
        if not front or c.score > front[-1].score:
            front.append(c)
    return front


def knee(front: list[Config]) -> tuple[Config | None, str]:
    """The knee of the metric-vs-flash-budget front (Kneedle: both axes scaled to 0..1, the point
    farthest above the chord from the smallest to the largest budget), and why."""
    if len(front) < 3:
        return None, f"the Pareto front has {len(front)} point(s); a knee needs at least 3 budgets"
    x0, x1 = front[0].flash_budget_bytes, front[-1].flash_budget_bytes
    y0, y1 = front[0].score, front[-1].score
    gains = [((c.score - y0) / (y1 - y0)) - ((c.flash_budget_bytes - x0) / (x1 - x0)) for c in front]
    best = max(range(len(front)), key=lambda i: (gains[i], -i))
    metric = front[0].metric
    if gains[best] <= 0:
        return None, f"{metric_name(metric)} improves no faster at small budgets than at large ones: no knee"
    more = _kib(x1 - front[best].flash_budget_bytes)
    if higher_is_better(metric):
        return front[best], (f"beyond it, {more} more flash buys {100 * (y1 - front[best].score):+.2f} points "
                             "of accuracy")
    return front[best], (f"beyond it, {more} more flash takes the {metric_name(metric)} from "
                         f"{fmt_metric(front[best].value, metric)} to {fmt_metric(front[-1].value, metric)}")


def _metric_of(cfgs: list[Config]) -> str:
    """The sweep's metric (every point's model is the same)."""
    return next((c.metric for c in cfgs), "accuracy")


def _meeting(metric: str, threshold: float) -> str:
    """What meeting the threshold means, to follow "boards that"."""
    if higher_is_better(metric):
        return f"reach {fmt_metric(threshold, metric)}"
    return f"keep the {metric_name(metric)} at or below {fmt_metric(threshold, metric)}"


def recommend(cfgs: list[Config], threshold: float | None) -> dict:
    """The cheapest board (smallest flash + RAM as listed in boards/) with a configuration that fits
    on every seed and meets ``threshold`` on average: an accuracy at least that high (--min-accuracy),
    an error such as MSE at most that high (--max-mse). Without a threshold: the best accuracy less
    one point, the best error plus 10 %."""
    scored = [c for c in cfgs if c.score is not None]
    metric = _metric_of(cfgs)
    better = higher_is_better(metric)
    source = THRESHOLD_OPTIONS.get(metric, "the threshold given")
    if threshold is None and scored:
        best = max(c.score for c in scored)
        if better:
            threshold = max(0.0, best - DEFAULT_ACCURACY_SLACK)
            source = f"the best accuracy ({fmt_metric(best, metric)}) less {100 * DEFAULT_ACCURACY_SLACK:g} point"
        else:
            threshold = -best * (1 + DEFAULT_ERROR_SLACK)
            source = (f"the best {metric_name(metric)} ({fmt_metric(-best, metric)}) plus "
                      f"{100 * DEFAULT_ERROR_SLACK:g} %")
    source = source if threshold is not None else None
    bar = {"metric": metric, "threshold": threshold, "threshold_source": source,
           # the keys of the classifiers' sweeps, from before error metrics had a bar
           "min_accuracy": threshold if better else None, "min_accuracy_source": source if better else None}
    if not scored:
        return {"board": None, **bar, "reason": "no point fits with a measured " + metric_name(metric)}
    good = [c for c in scored if meets(metric, c.value, threshold)]
    if not good:
        return {"board": None, **bar,
                "reason": f"no board fits on every seed and can, on average over them, {_meeting(metric, threshold)}"}
    cheapest = min(good, key=lambda c: (c.board_cost_bytes, c.board)).board
    pick = max((c for c in good if c.board == cheapest),
               key=lambda c: (c.score, (c.least("flash_free_bytes") or 0) + (c.least("ram_free_bytes") or 0)))
    boards_ok = sorted({c.board for c in good})
    return {"board": cheapest, "config": pick.key, **bar,
            "accuracy": pick.accuracy, "value": pick.value, "flash_budget_bytes": pick.flash_budget_bytes,
            "ram_budget_bytes": pick.ram_budget_bytes, "flash_free_bytes": pick.least("flash_free_bytes"),
            "ram_free_bytes": pick.least("ram_free_bytes"), "board_cost_bytes": pick.board_cost_bytes,
            "boards_meeting": boards_ok,
            "reason": f"the cheapest of {len(boards_ok)} board(s) that {_meeting(metric, threshold)}"}


def summarise(rows: list[dict], threshold: float | None) -> dict:
    """Per-configuration figures, the Pareto front, its knee and the recommendation; ``threshold``
    is --min-accuracy or --max-mse, whichever the model's metric takes (None: the default)."""
    cfgs = configs(rows)
    front = pareto_front(cfgs)
    k, why = knee(front)
    metric = _metric_of(cfgs)
    return {"metric": metric, "higher_is_better": higher_is_better(metric),
            "configs": [c.to_dict() for c in cfgs], "pareto": [c.key for c in front],
            "knee": {"config": k.key if k else None, "flash_budget_bytes": k.flash_budget_bytes if k else None,
                     "accuracy": k.accuracy if k else None, "value": k.value if k else None, "reason": why},
            "recommendation": recommend(cfgs, threshold),
            "points": len(rows), "ok": sum(r["status"] == "ok" for r in rows),
            "failed": sum(r["status"] != "ok" for r in rows)}


def rows_csv(rows: list[dict]) -> str:
    import csv

    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=ROW_FIELDS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: "" if r.get(k) is None else r[k] for k in ROW_FIELDS})
    return buf.getvalue()


def _kib(n: int) -> str:
    from tinyprune.sizes import format_size

    return format_size(int(n))
