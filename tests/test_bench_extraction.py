"""The extraction benchmark's pieces: MACs per cut, the ideal ratio, pruned per-layer passes, figures."""

from __future__ import annotations

import argparse
import time

import numpy as np
import pytest
import torch

from benchmarks import extraction
from transferlab.inside.inspect import inspect_model
from transferlab.models.registry import build_backbone
from transferlab.transfer.features import extract_features, feature_extractor

torch.set_num_threads(1)
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def mini():
    return build_backbone("vgg_mini", "none", seed=0)


def test_ideal_speedup_is_sum_over_deepest():
    assert extraction.ideal_speedup({"a": 1, "b": 3, "c": 4}) == pytest.approx(2.0)
    assert extraction.ideal_speedup({"only": 7}) == pytest.approx(1.0)


def test_cut_macs_are_cumulative_from_the_input(mini):
    macs = extraction.cut_macs(mini, ["pool1", "pool2", "fc7"])
    conv1 = 28 * 28 * 16 * 3 * 9  # 3->16 3x3 conv at 28 x 28
    conv2 = 14 * 14 * 32 * 16 * 9  # 16->32 at 14 x 14
    assert macs["pool1"] == conv1
    assert macs["pool2"] == conv1 + conv2
    full = inspect_model(mini.model, 28).macs
    fc8 = 256 * 10
    assert macs["fc7"] == full - fc8  # everything but the class layer


def test_per_layer_graph_is_pruned_and_gives_the_one_pass_features(mini):
    shallow = feature_extractor(mini, ["pool1"], CPU)
    names = {name for name, _ in shallow.named_modules()}
    assert "features.0" in names and not any(n.startswith("classifier") for n in names)
    images = np.random.default_rng(3).integers(0, 256, (6, 28, 28, 1), dtype=np.uint8)
    layers = ["pool1", "pool3", "fc7"]
    one, _ = extract_features(mini, images, layers, batch_size=4, device=CPU, progress=False)
    for layer in layers:
        alone, _ = extract_features(mini, images, [layer], batch_size=4, device=CPU, progress=False)
        np.testing.assert_array_equal(alone[layer], one[layer])


def test_run_reports_every_figure_on_tiny_inputs(mini, capsys):
    """The group end to end on a few Fashion-MNIST images (no 224 px arch): names, units, verdicts."""
    parser = argparse.ArgumentParser()
    extraction.add_arguments(parser)
    args = parser.parse_args(
        ["--extract-small-images", "64", "--extract-small-batch", "32", "--extract-min-seconds", "0"]
        + ["--extract-min-rounds", "3", "--extract-large-archs"]
    )
    figures = {f.name: f for f in extraction.run(args)}
    label = "vgg_mini, 28 px Fashion-MNIST"
    ceiling = figures["matmul ceiling (cpu)"]
    assert ceiling.unit == "GFLOP/s" and ceiling.value > 0 and ceiling.met is None
    assert "median of 3 rounds" in ceiling.detail  # the ceiling is timed in the vgg_mini case's 3 rounds
    one = figures[f"one pass vs per layer, {label}"]
    ideal = extraction.ideal_speedup(extraction.cut_macs(mini, list(mini.cut_points)))
    assert one.unit == "x" and one.value > 0 and "ideal 3.31x" in one.target and one.met == (one.value >= 0.8 * ideal)
    alone = figures[f"model alone / matmul ceiling, {label}"]
    assert alone.unit == "%" and alone.value > 0 and alone.met is None  # the 70% target is stated at 224 px
    skipped = "Fashion-MNIST not available" in capsys.readouterr().out
    if not skipped:
        e2e = figures[f"extract end to end / model alone, {label}"]
        assert e2e.unit == "%" and e2e.value > 0 and e2e.met == (e2e.value >= 80) and "64 images" in e2e.detail
        assert "median of 3 rounds" in e2e.detail


def test_timed_rounds_take_turns_until_both_limits():
    calls: list[str] = []
    runs = extraction.timed_rounds(
        [lambda: calls.append("a"), lambda: calls.append("b")], CPU, extraction.Rounds(min_seconds=0, min_rounds=3)
    )
    assert calls == ["a", "b"] * 3 and [len(r) for r in runs] == [3, 3] and all(t >= 0 for r in runs for t in r)
    slow = extraction.timed_rounds([lambda: time.sleep(0.01)], CPU, extraction.Rounds(min_seconds=0.05, min_rounds=1))
    assert sum(slow[0]) >= 0.05 and sum(slow[0][:-1]) < 0.05  # stops in the round that passes the limit


def test_ratio_is_the_median_of_per_round_ratios():
    # round 2 is spoiled on the denominator side: the median ignores it, the best-of pairs the fastest runs
    ratio = extraction.Ratio.per_round([2.0, 2.2, 1.9], [1.0, 2.0, 1.0], higher_is_better=False)
    assert ratio.median == pytest.approx(1.9) and ratio.low == pytest.approx(1.1) and ratio.high == pytest.approx(2.0)
    assert ratio.of_best == pytest.approx(1.9) and ratio.rounds == 3
    rates = extraction.Ratio.per_round([10.0, 30.0], [20.0, 20.0], higher_is_better=True)
    assert rates.median == pytest.approx(1.0) and rates.of_best == pytest.approx(1.5)
    assert rates.describe(100, "%") == "median of 2 rounds, range 50%-150%, best-of-each 150%"


def test_matmul_probe_ceiling_is_the_best_size_of_each_round():
    sizes = extraction.MATMUL_SIZES
    runs = [[2 * n**3 / 1e9 / g for g in gflops] for n, gflops in zip(sizes, [(10, 40), (20, 30), (30, 20)], strict=True)]
    assert extraction.MatmulProbe.per_round(runs) == pytest.approx([30.0, 40.0])
