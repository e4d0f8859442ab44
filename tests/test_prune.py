"""The pruning stage as a library: groups, surgery, the channel cost model, the budget search and
the importance criteria.

Oracles: torch-pruning's dependency graph and a real forward pass for shapes; the cost model
(``cost.estimate``) traced from the model *after* real surgery for the search's cost model; the
mnist1d test set for accuracy."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from tinyprune import cost, zoo
from tinyprune.data import load_dataset
from tinyprune.errors import BadInput, BudgetError
from tinyprune.importance import CRITERIA, channel_scores
from tinyprune.prune import (
    Budget, ChannelCostModel, PruneConfig, allowed_counts, apply_channels, check_budget, find_groups,
    group_widths, output_layers, prune_to_budget,
)

ZOO = sorted(zoo.ZOO)
BIG = 1 << 30  # a budget no model reaches
NO_TRAINING = dict(step_epochs=0, finetune_epochs=0)


def _build(name: str, seed: int = 0) -> tuple[nn.Module, tuple[int, ...]]:
    torch.manual_seed(seed)
    entry = zoo.get(name)
    return entry.build().eval(), entry.input_shape


def _random_widths(groups, rng, floor: int = 1) -> dict[str, int]:
    return {g.name: int(rng.integers(min(floor, g.channels), g.channels + 1)) for g in groups}


def _random_scores(groups, rng) -> dict[str, np.ndarray]:
    return {g.name: rng.random(g.channels) for g in groups}


def _first_weighted(model: nn.Module) -> nn.Module:
    return next(m for m in model.modules() if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear)))


def _in_channels(m: nn.Module) -> int:
    return m.in_features if isinstance(m, nn.Linear) else m.in_channels


def _out_channels(m: nn.Module) -> int:
    return m.out_features if isinstance(m, nn.Linear) else m.out_channels


class _Data:
    """A Dataset stand-in with random samples (for runs that only evaluate, never to learn)."""

    def __init__(self, shape, classes: int = 10, n: int = 64, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.x_train = self.x_val = self.x_test = rng.normal(size=(n, *shape)).astype(np.float32)
        self.y_train = self.y_val = self.y_test = rng.integers(0, classes, n)


# ---- groups ----------------------------------------------------------------------------------------

def test_groups_of_mnist1d_cnn():
    model, shape = _build("mnist1d-cnn")
    groups, _ = find_groups(model, shape)
    assert [(g.name, g.out_layers, g.in_layers, g.channels) for g in groups] == [
        ("features.0.0", ("features.0.0",), ("features.1.0",), 32),
        ("features.1.0", ("features.1.0",), ("features.2.0",), 64),
        ("features.2.0", ("features.2.0",), ("classifier.1",), 64),
    ]
    assert output_layers(model, shape) == ("classifier.1",)


def test_groups_follow_residual_and_depthwise_coupling():
    resnet, shape = _build("resnet8")
    by_name = {g.name: g for g in find_groups(resnet, shape)[0]}
    # the identity shortcut of the first stack ties the stem's channels to that stack's output
    assert by_name["stem.0"].out_layers == ("stem.0", "stacks.0.conv2.0")
    # a projection shortcut is pruned together with the convolution it is added to
    assert set(by_name["stacks.1.conv2.0"].out_layers) == {"stacks.1.conv2.0", "stacks.1.shortcut.0"}
    dscnn, shape = _build("ds-cnn")
    first = find_groups(dscnn, shape)[0][0]
    # a depthwise convolution keeps as many channels as the layer that feeds it
    assert first.out_layers == ("features.0.0", "features.1.0") and "features.2.0" in first.in_layers


class _DepthwiseOnInput(nn.Module):
    def __init__(self):
        super().__init__()
        self.dw = nn.Conv2d(3, 3, 3, padding=1, groups=3)
        self.pw = nn.Conv2d(3, 16, 1)
        self.fc = nn.Linear(16, 4)

    def forward(self, x):
        return self.fc(torch.relu(self.pw(self.dw(x))).mean((2, 3)))


class _ResidualOnInput(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Conv2d(8, 8, 3, padding=1)
        self.b = nn.Conv2d(8, 16, 3, padding=1)
        self.fc = nn.Linear(16, 4)

    def forward(self, x):
        return self.fc(torch.relu(self.b(torch.relu(self.a(x)) + x)).mean((2, 3)))


@pytest.mark.parametrize("net, shape, prunable", [
    (_DepthwiseOnInput, (3, 8, 8), ["pw"]),  # dw's channels are the input's
    (_ResidualOnInput, (8, 8, 8), ["b"]),  # a's outputs are added to the input
])
def test_groups_coupled_to_the_model_input_are_not_pruned(net, shape, prunable):
    model = net().eval()
    groups, _ = find_groups(model, shape)
    assert [g.name for g in groups] == prunable
    feas = check_budget(model, shape, Budget(BIG, BIG), PruneConfig())
    assert feas.minimal.flash_bytes < feas.before.flash_bytes  # the rest still prunes
    apply_channels(model, shape, groups, {g.name: 4 for g in groups}, _random_scores(groups, np.random.default_rng(0)))
    assert model(torch.randn(2, *shape)).shape == (2, 4)


# ---- surgery and the channel cost model -------------------------------------------------------------

@pytest.mark.parametrize("name", ZOO)
def test_surgery_keeps_shapes_consistent(name):
    model, shape = _build(name)
    entry = zoo.get(name)
    groups, _ = find_groups(model, shape)
    protected = output_layers(model, shape)
    first_in = _in_channels(_first_weighted(model))
    rng = np.random.default_rng(1)
    keep = _random_widths(groups, rng, floor=4)
    after = apply_channels(model, shape, groups, keep, _random_scores(groups, rng))
    assert group_widths(model, after) == keep == {g.name: g.channels for g in after}
    with torch.no_grad():
        assert model.eval()(torch.randn(3, *shape)).shape == (3, entry.outputs)
        model.train()(torch.randn(3, *shape)).sum()  # training mode too (BatchNorm statistics)
    mods = dict(model.named_modules())
    assert _in_channels(_first_weighted(model)) == first_in
    for name_ in protected:
        assert _out_channels(mods[name_]) == entry.outputs
    # every coupled layer got the group's width
    for g in after:
        for layer in g.out_layers:
            assert _out_channels(mods[layer]) == g.channels, layer


@pytest.mark.parametrize("name", ZOO)
def test_channel_cost_model_matches_the_estimate_after_surgery(name):
    model, shape = _build(name)
    groups, _ = find_groups(model, shape)
    cm = ChannelCostModel(model, shape, groups)
    rng = np.random.default_rng(2)
    for _ in range(2):
        keep = _random_widths(groups, rng)
        pruned = copy.deepcopy(model)
        apply_channels(pruned, shape, groups, keep, _random_scores(groups, rng))
        real = cost.estimate(pruned, shape)
        predicted = cm.price(keep)
        for field in ("flash_bytes", "model_bytes", "ram_bytes", "arena_bytes", "param_bytes", "params", "macs",
                      "num_tensors"):
            assert getattr(predicted, field) == getattr(real, field), (field, keep)
        fast = cm.fast(keep)
        assert (fast.flash_bytes, fast.param_bytes) == (real.flash_bytes, real.param_bytes)
        assert fast.live_bytes.max() <= real.activation_peak_bytes


@pytest.mark.parametrize("name", ["mnist1d-cnn", "ds-cnn", "resnet8", "fc-autoencoder"])
def test_estimated_cost_decreases_monotonically_with_pruning(name):
    """Flash, weights and MACs fall with every channel removed; so does the set of activations
    alive at once (the greedy arena plan on top of it may shift by a few bytes either way, as the
    runtime's planner does)."""
    model, shape = _build(name)
    groups, _ = find_groups(model, shape)
    rng = np.random.default_rng(3)
    prev = cost.estimate(model, shape)
    live = lambda est: max(lc.live_bytes for lc in est.layers)  # noqa: E731
    for _ in range(8):
        g = groups[int(rng.integers(len(groups)))]
        if g.channels <= 4:
            continue
        keep = {g.name: int(rng.integers(4, g.channels))}
        groups = apply_channels(model, shape, groups, keep, _random_scores(groups, rng))
        est = cost.estimate(model, shape)
        assert est.flash_bytes < prev.flash_bytes and est.model_bytes < prev.model_bytes
        assert est.param_bytes < prev.param_bytes and est.params < prev.params
        assert est.macs <= prev.macs and live(est) <= live(prev)
        prev = est
    floor = check_budget(model, shape, Budget(BIG, BIG)).minimal
    assert floor.ram_bytes <= prev.ram_bytes and floor.flash_bytes <= prev.flash_bytes


def test_allowed_counts_and_floor():
    assert allowed_counts(10, PruneConfig(round_to=8)) == [10, 8]
    assert allowed_counts(32, PruneConfig(round_to=8)) == [32, 24, 16, 8]
    assert allowed_counts(7, PruneConfig()) == [7, 6, 5, 4]
    assert allowed_counts(3, PruneConfig()) == [3]  # already below the floor: never pruned
    assert PruneConfig(min_channels=4, round_to=8).floor == 8
    assert PruneConfig(min_channels=10, round_to=4).floor == 12


def test_surgery_refuses_to_remove_a_layer():
    model, shape = _build("mnist1d-cnn")
    groups, _ = find_groups(model, shape)
    with pytest.raises(ValueError, match="cannot keep 0 of 32"):
        apply_channels(model, shape, groups, {"features.0.0": 0}, {})


@pytest.mark.parametrize("field, value, expect", [
    ("importance", "magnitude", "unknown importance 'magnitude'"),
    ("schedule", "cyclic", "unknown schedule 'cyclic'"),
    ("min_channels", 0, "--min-channels must be at least 1"),
    ("round_to", 0, "--round-to must be at least 1"),
    ("steps", 0, "--steps must be at least 1"),
    ("force_ratio", 1.0, "--force-ratio must be between 0 and 1"),
    ("finetune_lr", 0.0, "--lr must be positive"),
    ("finetune_epochs", -1, "cannot be negative"),
])
def test_bad_config(field, value, expect):
    with pytest.raises(BadInput, match=expect):
        PruneConfig(**{field: value})


# ---- the budget search ------------------------------------------------------------------------------

def _untrained_run(name, budget, **cfg):
    model, shape = _build(name)
    return prune_to_budget(model, shape, _Data(shape, zoo.get(name).outputs), budget,
                           PruneConfig(**{**NO_TRAINING, **cfg}), task=zoo.get(name).task)


@pytest.mark.parametrize("schedule", ["iterative", "oneshot", "uniform"])
@pytest.mark.parametrize("resource", ["flash", "ram"])
def test_a_budget_between_two_sizes_ends_between_them(schedule, resource):
    """Between the unpruned model and the smallest reachable one: it fits, and is not cut far
    below the budget (the search stops when it fits)."""
    model, shape = _build("mnist1d-cnn")
    feas = check_budget(model, shape, Budget(BIG, BIG))
    lo, hi = getattr(feas.minimal, f"{resource}_bytes"), getattr(feas.before, f"{resource}_bytes")
    limit = (lo + hi) // 2
    budget = Budget(limit, BIG) if resource == "flash" else Budget(BIG, limit)
    r = _untrained_run("mnist1d-cnn", budget, schedule=schedule)
    got = getattr(r.after, f"{resource}_bytes")
    assert r.fits and not r.passed_through
    assert lo < got <= limit
    assert limit - got <= 0.06 * (hi - lo), (got, limit)
    assert r.after == cost.estimate(r.model, shape)  # what the report says is what the model costs


def test_iterative_steps_shrink_the_model_step_by_step():
    model, shape = _build("mnist1d-cnn")
    before = cost.estimate(model, shape)
    r = _untrained_run("mnist1d-cnn", Budget(before.flash_bytes * 3 // 5, BIG), steps=4)
    prunes = [s for s in r.steps if s["phase"] == "prune"]
    assert len(prunes) == 4
    flash = [r.steps[0]["flash_estimate_bytes"]] + [s["flash_estimate_bytes"] for s in prunes]
    params = [r.steps[0]["param_bytes"]] + [s["param_bytes"] for s in prunes]
    assert flash == sorted(flash, reverse=True) and len(set(flash)) == len(flash)
    assert params == sorted(params, reverse=True) and len(set(params)) == len(params)
    assert r.steps[-1]["phase"] == "final" and r.steps[-1]["over_budget"] is None


@pytest.mark.parametrize("schedule", ["iterative", "uniform"])
def test_round_to_keeps_multiples(schedule):
    model, shape = _build("mnist1d-cnn")
    before = cost.estimate(model, shape)
    r = _untrained_run("mnist1d-cnn", Budget(before.flash_bytes * 3 // 5, BIG), round_to=8, schedule=schedule)
    widths = [g.channels for g in r.groups_after]
    assert r.fits and widths != [g.channels for g in r.groups_before]
    assert all(w % 8 == 0 for w in widths), widths


def test_min_channels_guard_against_layer_collapse():
    """At the tightest possible budget every group stops at its floor, never below and never
    removed; a group narrower than the floor is left alone."""
    model, shape = _build("fc-autoencoder")  # has an 8-wide bottleneck
    cfg = PruneConfig(min_channels=12, **NO_TRAINING)
    feas = check_budget(model, shape, Budget(BIG, BIG), cfg)
    r = prune_to_budget(model, shape, _Data(shape), Budget(feas.minimal.flash_bytes, BIG), cfg,
                        task="reconstruction")
    widths = {g.name: g.channels for g in r.groups_after}
    assert widths["net.12"] == 8  # the bottleneck: below the floor already
    assert all(w == 12 for n, w in widths.items() if n != "net.12"), widths
    assert len(r.after.layers) == len(r.before.layers)
    with torch.no_grad():
        assert r.model(torch.randn(2, *shape)).shape == (2, 640)
    with pytest.raises(BudgetError):  # one byte less cannot be met
        check_budget(model, shape, Budget(feas.minimal.flash_bytes - 1, BIG), cfg)


@pytest.mark.parametrize("name", ZOO)
def test_output_and_input_channels_are_never_pruned(name):
    model, shape = _build(name)
    entry = zoo.get(name)
    protected = output_layers(model, shape)
    groups, _ = find_groups(model, shape)
    assert protected and not set(protected) & {layer for g in groups for layer in g.out_layers}
    first = _in_channels(_first_weighted(model))
    mins = {g.name: allowed_counts(g.channels, PruneConfig())[-1] for g in groups}
    apply_channels(model, shape, groups, mins, _random_scores(groups, np.random.default_rng(4)))
    mods = dict(model.named_modules())
    assert [_out_channels(mods[p]) for p in protected] == [entry.outputs] * len(protected)
    assert _in_channels(_first_weighted(model)) == first


class _TwoHeads(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Conv1d(1, 16, 3, padding=1)
        self.head_a = nn.Linear(16 * 20, 3)
        self.head_b = nn.Linear(16 * 20, 2)

    def forward(self, x):
        h = torch.relu(self.body(x)).flatten(1)
        return torch.cat([self.head_a(h), self.head_b(h)], 1)


def test_every_layer_writing_the_output_is_protected():
    model = _TwoHeads().eval()
    assert set(output_layers(model, (1, 20))) == {"head_a", "head_b"}
    assert [g.name for g in find_groups(model, (1, 20))[0]] == ["body"]


class _PeakVsWeights(nn.Module):
    """A wide first layer on a long signal (it sets the activation peak, with few weights) and a
    dense layer on a short one (most of the weights, tiny activations)."""

    input_shape = (1, 128)

    def __init__(self):
        super().__init__()
        self.wide = nn.Conv1d(1, 32, 3, padding=1)
        self.pool = nn.MaxPool1d(8)
        self.narrow = nn.Conv1d(32, 16, 3, padding=1)
        self.fc = nn.Linear(16 * 16, 96)
        self.head = nn.Linear(96, 10)

    def forward(self, x):
        x = torch.relu(self.narrow(self.pool(torch.relu(self.wide(x)))))
        return self.head(torch.relu(self.fc(x.flatten(1))))


def _peak_vs_weights_run(budget_of):
    torch.manual_seed(0)
    model = _PeakVsWeights().eval()
    shape = model.input_shape
    before = cost.estimate(model, shape)
    assert before.peak_layer in ("wide", "pool") and before.largest_layer == "fc"
    r = prune_to_budget(model, shape, _Data(shape), budget_of(before), PruneConfig(**NO_TRAINING))
    assert r.fits
    return before, {g.name: g.channels / o.channels for g, o in zip(r.groups_after, r.groups_before)}, r


def test_ram_binding_search_cuts_the_layers_at_the_activation_peak():
    before, kept, r = _peak_vs_weights_run(lambda b: Budget(BIG, b.ram_bytes - 2000))
    assert kept["wide"] < 0.75
    assert kept["narrow"] == 1.0 and kept["fc"] == 1.0  # their activations are not at the peak
    assert r.after.activation_peak_bytes < before.activation_peak_bytes


def test_flash_binding_search_cuts_the_layers_holding_the_weights():
    before, kept, r = _peak_vs_weights_run(lambda b: Budget(b.flash_bytes - 20000, BIG))
    # each channel of `narrow` carries 16 x 96 weights of `fc`; one of `wide` only 52 weights
    assert kept["narrow"] <= 0.5 and kept["wide"] >= 0.9
    assert r.after.ram_bytes >= before.ram_bytes - 300  # RAM was not the target


def test_a_budget_the_model_already_fits_passes_it_through_unchanged():
    model, shape = _build("mnist1d-cnn")
    state = copy.deepcopy(model.state_dict())
    r = prune_to_budget(model, shape, _Data(shape), Budget(BIG, BIG), PruneConfig(finetune_epochs=3))
    assert r.passed_through and r.fits and r.model is model and r.after == r.before
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    assert len(r.steps) == 1 and r.finetune_epochs_total == 0


def test_force_ratio_prunes_a_model_that_fits():
    model, shape = _build("mnist1d-cnn")
    before = cost.estimate(model, shape)
    r = prune_to_budget(model, shape, _Data(shape), Budget(BIG, BIG), PruneConfig(force_ratio=0.5, **NO_TRAINING))
    assert not r.passed_through and r.fits
    assert before.model_bytes * 0.45 <= r.after.model_bytes <= before.model_bytes * 0.5
    with pytest.raises(BudgetError, match="--force-ratio 0.99 asks for at most") as exc:
        check_budget(_build("mnist1d-cnn")[0], shape, Budget(BIG, BIG), PruneConfig(force_ratio=0.99))
    assert "smaller --force-ratio" in exc.value.hint


def test_impossible_budget_names_the_smallest_reachable_sizes():
    model, shape = _build("mnist1d-cnn")
    minimal = check_budget(model, shape, Budget(BIG, BIG)).minimal
    with pytest.raises(BudgetError) as exc:
        check_budget(model, shape, Budget(minimal.flash_bytes - 1, BIG))
    msg = exc.value.message
    assert "flash budget" in msg and "RAM budget" not in msg
    assert f"flash {minimal.flash_bytes} bytes" in msg and f"RAM {minimal.ram_bytes} bytes" in msg
    with pytest.raises(BudgetError, match="fits the RAM budget"):
        check_budget(model, shape, Budget(BIG, minimal.ram_bytes - 1))


# ---- importance -------------------------------------------------------------------------------------

def _with_dead_channel(channel: int = 5):
    """mnist1d-cnn with channel ``channel`` of features.1 contributing nothing (all its weights zero)."""
    model, shape = _build("mnist1d-cnn")
    with torch.no_grad():
        model.features[1][0].weight[channel] = 0
        model.features[1][1].weight[channel] = 0
        model.features[1][1].bias[channel] = 0
        model.features[2][0].weight[:, channel] = 0
    return model, shape


@pytest.mark.parametrize("criterion", CRITERIA)
def test_importance_scores_every_channel(criterion):
    model, shape = _with_dead_channel()
    groups, DG = find_groups(model, shape)
    data = _Data(shape)
    scores = channel_scores(criterion, model, DG, groups, shape, data, seed=0)
    assert set(scores) == {g.name for g in groups}
    for g in groups:
        s = scores[g.name]
        assert s.shape == (g.channels,) and np.isfinite(s).all() and (s >= 0).all()
        assert len(np.unique(s)) > g.channels // 2  # a ranking, not a constant
    again = channel_scores(criterion, model, DG, groups, shape, data, seed=0)
    assert all(np.array_equal(scores[n], again[n]) for n in scores)  # deterministic for a seed
    if criterion == "random":
        other = channel_scores(criterion, model, DG, groups, shape, data, seed=1)
        assert not np.array_equal(scores["features.1.0"], other["features.1.0"])
    else:  # the dead channel is the least important, and the one surgery removes
        assert int(np.argmin(scores["features.1.0"])) == 5
        apply_channels(model, shape, groups, {"features.1.0": 63}, scores)
        assert (model.features[1][0].weight.abs().sum(dim=(1, 2)) > 0).all()


def test_taylor_needs_data():
    model, shape = _build("mnist1d-cnn")
    groups, DG = find_groups(model, shape)
    with pytest.raises(ValueError, match="taylor importance needs training data"):
        channel_scores("taylor", model, DG, groups, shape, None)


def test_taylor_leaves_the_model_as_it_was():
    model, shape = _build("mnist1d-cnn")
    before = copy.deepcopy(model.state_dict())
    groups, DG = find_groups(model, shape)
    channel_scores("taylor", model, DG, groups, shape, _Data(shape))
    assert all(p.grad is None for p in model.parameters()) and not model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


# ---- accuracy ---------------------------------------------------------------------------------------

@pytest.mark.slow
def test_pruned_to_half_its_int8_size_mnist1d_cnn_keeps_85_percent():
    from tinyprune.train import evaluate, trained_zoo_checkpoint

    model, shape = _build("mnist1d-cnn")
    model.load_state_dict(torch.load(trained_zoo_checkpoint("mnist1d-cnn", "mnist1d"), weights_only=True))
    data = load_dataset("mnist1d")
    before = cost.estimate(model, shape)
    budget = Budget(before.runtime_code_bytes + before.model_bytes // 2, before.ram_bytes)
    r = prune_to_budget(model, shape, data, budget, PruneConfig(finetune_epochs=6))
    assert r.test_before >= 0.90
    assert r.fits and r.after.model_bytes <= before.model_bytes // 2
    assert r.after.param_bytes < before.param_bytes * 0.6
    assert r.test_after >= 0.85, r.test_after
    assert r.test_after == evaluate(r.model, data.x_test, data.y_test)
