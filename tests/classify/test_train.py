"""``rtclass train`` (``rtclass.classify.train``): labelled sets read and checked, the scores of a
model, an ensemble trained on a small separable set, exported to ONNX with its card, that the
live path loads and that labels its training units right."""

import dataclasses
import json

import numpy as np
import pytest

from rtclass.classify.layout import RTCLASS_CLASSES
from rtclass.classify.train import (
    balanced_accuracy,
    confusion_matrix,
    evaluate,
    fit_physiology_baseline,
    load_set,
    require_training_extra,
)
from rtclass.errors import InputError


def _write_set(folder, per_class=12, seed=0, types=RTCLASS_CLASSES, description=True):
    """A features.npz whose classes differ clearly: each type's ACG and waveform have their own bump."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    acg, wave, names, layers = [], [], [], []
    for k, name in enumerate(types):
        for _ in range(per_class):
            a = rng.uniform(0, 0.2, (10, 101)).astype(np.float32)
            a[:, 10 + 15 * k : 20 + 15 * k] += 3.0
            w = rng.normal(0, 0.05, 90).astype(np.float32)
            w[30] = -1.0
            w[40 + 8 * k : 46 + 8 * k] += 0.8
            acg.append(a)
            wave.append(w)
            names.append(name)
            layers.append(("ML", "PCL", "GCL")[k % 3])
    np.savez(folder / "features.npz", acg3d=acg, waveform=wave, cell_type=np.array(names), layer=np.array(layers))
    if description:
        (folder / "simulation.json").write_text(json.dumps({"simulate": {"seed": seed, "units_per_type": per_class}}))
    return folder


def test_a_set_is_the_assembled_features_and_class_indices(tmp_path):
    s = load_set(_write_set(tmp_path / "set1", per_class=2), use_layer=False)
    assert s.name == "set1" and s.x.shape == (10, 1100) and s.x.dtype == np.float32
    assert s.y.tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]  # RTCLASS_CLASSES order
    assert s.description["simulate"]["units_per_type"] == 2
    with_layer = load_set(tmp_path / "set1", use_layer=True)
    assert with_layer.x.shape == (10, 1104) and with_layer.x[0, 1100:].tolist() == [0, 0, 0, 1]  # ML
    bare = load_set(_write_set(tmp_path / "bare", per_class=1, description=False), False)
    assert bare.description == {}


def test_sets_the_classifier_cannot_learn_from_are_refused(tmp_path):
    with pytest.raises(InputError, match="features.npz is missing"):
        load_set(tmp_path / "nothing", False)
    _write_set(tmp_path / "odd", per_class=1, types=("PkC_ss", "Bergmann"))
    with pytest.raises(InputError, match=r"cell types \['Bergmann'\] that the classifier does not know"):
        load_set(tmp_path / "odd", False)


def test_the_baseline_weighs_every_generator_the_same(tmp_path):
    """A generator with four times the training sets does not pull the baseline's centroids."""
    a = load_set(_write_set(tmp_path / "a", per_class=6, seed=1), False)
    b = load_set(_write_set(tmp_path / "b", per_class=6, seed=2), False)
    b.description["generator"] = "independent"
    once = fit_physiology_baseline([a, b])
    four_times = fit_physiology_baseline([a, b, b, b, b])
    assert np.allclose(four_times.centroids, once.centroids) and np.allclose(four_times.spread, once.spread)
    b_as_a = dataclasses.replace(b, description={})  # the same units, said to come from a's generator
    assert not np.allclose(fit_physiology_baseline([a, b_as_a, b_as_a, b_as_a, b_as_a]).centroids, once.centroids)


def test_confusion_and_balanced_accuracy():
    y = np.array([0, 0, 0, 0, 1, 1, 2])
    pred = np.array([0, 0, 0, 1, 1, 0, 2])
    cm = confusion_matrix(y, pred, 4)
    assert cm.tolist() == [[3, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 0]]
    assert balanced_accuracy(cm) == pytest.approx((0.75 + 0.5 + 1.0) / 3)  # classes without units do not count
    probs = np.eye(5)[[0, 1, 2, 3, 4, 4]]
    ev = evaluate(probs, np.array([0, 1, 2, 3, 4, 0]))
    assert ev["units"] == 6 and ev["accuracy"] == pytest.approx(5 / 6)
    assert ev["balanced_accuracy"] == pytest.approx((0.5 + 4) / 5) and ev["classes"] == list(RTCLASS_CLASSES)
    assert ev["confusion"][0] == [1, 0, 0, 0, 1]


def test_train_export_load_and_label(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("onnx")
    from rtclass.classify.model import CellTypeModel
    from rtclass.classify.train import train_command

    train = _write_set(tmp_path / "train", per_class=16, seed=1)
    held = _write_set(tmp_path / "held", per_class=6, seed=2)
    steps = []
    results = train_command(
        [str(train)],
        str(tmp_path / "model"),
        [str(held)],
        2,
        4,
        0,
        False,
        lambda e, n: steps.append((e, n)),
        augment=False,  # the toy classes differ by bumps the randomisation would blur in 4 epochs
    )
    assert steps[-1] == (8, 8) and len(steps) == 8  # progress over both members' epochs
    assert set(results) == {"train", "held"}
    assert results["held"]["balanced_accuracy"] >= 0.9 and "held out" in results["held"]["description"]
    out = tmp_path / "model"
    assert json.loads((out / "metrics.json").read_text()) == results
    card = json.loads((out / "model_card.json").read_text())
    assert card["classes"] == list(RTCLASS_CLASSES) and card["ensemble_members"] == 2
    assert "SYNTHETIC" in (out / "model_card.md").read_text()
    model = CellTypeModel(out / "model.onnx")  # checks the sha256 in the card too
    assert model.classes == RTCLASS_CLASSES and not model.use_layer
    f = np.load(held / "features.npz")
    names, _, _ = model.label(model.predict(f["acg3d"], f["waveform"]), 1.0)
    assert np.mean(names == f["cell_type"]) >= 0.9
    # the physiology baseline is fitted on the same sets, scored beside the network, hash-checked
    assert "baseline" in results["held"] and 0.0 <= results["held"]["abstained"] <= 1.0
    assert card["baseline"]["file"] == "baseline.json" and card["live_classifier"] in ("model", "baseline")
    assert [c["threshold"] for c in results["held"]["coverage_curve"]][0] == 1.0
    assert results["held"]["coverage_curve"][0]["coverage"] == 1.0  # every unit passes a ratio of 1
    assert "physiology baseline" in (out / "model_card.md").read_text()


def _ev(model, baseline):
    return {"balanced_accuracy": model, "baseline": {"balanced_accuracy": baseline}}


def test_the_better_classifier_on_held_out_sets_is_used_live():
    from rtclass.classify.train import better_classifier

    assert better_classifier([_ev(0.9, 0.8), _ev(0.7, 0.75)]) == "model"
    assert better_classifier([_ev(0.6, 0.8), _ev(0.7, 0.75)]) == "baseline"
    assert better_classifier([_ev(0.8, 0.8)]) == "model" and better_classifier([]) == "model"


def test_abstention_and_coverage_curve():
    from rtclass.classify.train import coverage_curve

    probs = np.array([[0.9, 0.1, 0, 0, 0], [0.5, 0.4, 0.1, 0, 0], [0.2, 0.7, 0.1, 0, 0], [0.45, 0.55, 0, 0, 0]])
    y = np.array([0, 1, 1, 0])
    ev = evaluate(probs, y, threshold=2.0)
    assert ev["abstained"] == pytest.approx(0.5) and ev["balanced_accuracy_labelled"] == pytest.approx(1.0)
    curve = coverage_curve(probs, y, (1.0, 2.0, 100.0))
    assert [c["coverage"] for c in curve] == [1.0, 0.5, 0.0]
    assert curve[0]["accuracy"] == pytest.approx(0.5) and curve[2]["balanced_accuracy"] is None


def test_training_needs_the_extra_and_says_how_to_get_it(monkeypatch):
    import builtins

    from rtclass.errors import RtclassError

    real_import = builtins.__import__

    def no_torch(name, *args, **kwargs):
        if name == "torch":
            raise ImportError("No module named 'torch'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_torch)
    monkeypatch.setattr("importlib.import_module", lambda name: no_torch(name))
    with pytest.raises(RtclassError, match=r"rtclass train needs PyTorch: pip install 'rtclass\[train\]'"):
        require_training_extra("rtclass train")


def test_training_randomisation_stretches_waveforms_and_rescales_rates():
    from rtclass.classify.train import augment_inputs, rescale_acg_rate, stretch_waveforms
    from rtclass.features.c4 import c4_acg

    t_ms = (np.arange(90) - 30) / 30.0
    wave = (-np.exp(-0.5 * (t_ms / 0.1) ** 2) + 0.4 * np.exp(-0.5 * ((t_ms - 0.6) / 0.15) ** 2))[None]
    assert np.allclose(stretch_waveforms(wave, np.array([1.0])), wave)
    wide = stretch_waveforms(wave, np.array([1.25]))[0]
    assert wide[30] == pytest.approx(wave[0, 30]) and (np.argmax(wide[30:]) - np.argmax(wave[0, 30:])) == pytest.approx(
        4, abs=1
    )
    # a Poisson train played 1.25x faster: its ACG plateau rises by 1.25
    rng = np.random.default_rng(5)
    times = np.unique((np.cumsum(rng.exponential(1 / 20.0, 6000)) * 30000).astype(np.int64))
    acg = c4_acg(times)[None]
    faster = rescale_acg_rate(acg, np.array([1.25]))
    assert faster[0, :, 0].tolist() == [0.0] * 10
    assert faster[0, :, 60:].mean() / acg[0, :, 60:].mean() == pytest.approx(1.25, rel=0.05)
    x = np.concatenate([acg.reshape(1, -1), wave], axis=1).astype(np.float32)
    a, b = augment_inputs(np.repeat(x, 4, 0), np.random.default_rng(1)), augment_inputs(x, np.random.default_rng(2))
    assert a.shape == (4, 1100) and a.dtype == np.float32 and np.all(np.isfinite(a)) and not np.allclose(a[0], a[1])
    assert b.shape == (1, 1100)


def test_the_default_threshold_keeps_abstention_on_another_generator_at_most_10_percent():
    from rtclass.classify.train import calibrated_threshold

    def ev(coverage_at):  # coverage by threshold, for the network and the baseline alike
        curve = [{"threshold": t, "coverage": c} for t, c in coverage_at.items()]
        return {"coverage_curve": curve, "baseline": {"coverage_curve": curve}}

    sure = ev({1.0: 1.0, 1.5: 0.97, 2.0: 0.95, 3.0: 0.5})
    unsure = ev({1.0: 1.0, 1.5: 0.91, 2.0: 0.85, 3.0: 0.4})
    assert calibrated_threshold([sure], "model") == 2.0  # C4's default already labels >= 90 %
    assert calibrated_threshold([sure, unsure], "model") == 1.5  # the highest lower one that does
    assert calibrated_threshold([ev({1.0: 1.0, 1.5: 0.5, 2.0: 0.4, 3.0: 0.1})], "baseline") == 1.0
    assert calibrated_threshold([], "model") == 2.0


def test_the_card_says_which_targets_hold():
    from rtclass.classify.train import _card_target_lines, target_status

    def ev(coverage, labelled_accuracy, accuracy=0.9):
        curve = [{"threshold": 1.25, "coverage": coverage, "balanced_accuracy": labelled_accuracy}]
        return {"coverage_curve": curve, "balanced_accuracy": accuracy}

    info = {
        "confidence_ratio": 1.25,
        "cross_generator": {
            "directions": {
                "trained on A, tested on B": {"b1": ev(0.95, 0.93), "b2": ev(0.92, 0.91)},
                "trained on B, tested on A": {"a1": ev(0.95, 0.97), "a2": ev(0.85, 0.95)},  # abstains 15 %
                "trained on A, B, tested on C": {"c1": ev(0.97, 0.89), "c1 (layer unknown)": ev(0.9, 0.8)},
            }
        },
        "evaluation": {"a_regime": {"balanced_accuracy": 0.97}, "c_regime": {"balanced_accuracy": 0.94}},
    }
    live = {
        "seed 7": {
            "live_equals_offline_label": 0.94,
            "live_proposal_equals_offline_label": 1.0,
            "units_labelled_as_different_types_live_and_offline": 0,
        }
    }
    targets = target_status(info, ["a_regime", "c_regime"], live)
    unseen = targets["unseen_generator"]["directions"]
    assert unseen["trained on A, tested on B"] == {
        "worst_abstained": pytest.approx(0.08),
        "worst_balanced_accuracy_labelled": 0.91,
        "met": True,
    }
    assert not unseen["trained on B, tested on A"]["met"] and not unseen["trained on A, B, tested on C"]["met"]
    # a condition (the layer hidden) is its own row, not mixed into the sets as they are
    assert unseen["trained on A, B, tested on C"]["worst_balanced_accuracy_labelled"] == 0.89
    assert unseen["trained on A, B, tested on C (layer unknown)"]["worst_balanced_accuracy_labelled"] == 0.8
    assert [r["met"] for r in targets["held_out_regimes"]["sets"].values()] == [True, False]
    assert not targets["live_equals_offline"]["runs"]["seed 7"]["met"]
    text = "\n".join(_card_target_lines(targets))
    assert "- seed 7: 0.940, **not met**" in text
    assert "not measured by this build" in "\n".join(_card_target_lines(target_status(info, [])))
    assert "| A, B → C | 3 % | 0.890 | **not met** |" in text and "`c_regime`: 0.940, **not met**" in text


def test_layer_aware_training_hides_or_changes_some_layers_and_keeps_the_rest():
    from rtclass.classify.layout import LAYER_ORDER, layer_one_hot
    from rtclass.classify.train import LAYER_UNKNOWN_FRACTION, LAYER_WRONG_FRACTION, augment_inputs, randomise_layers

    known = ["ML", "PCL", "GCL"] * 4000
    one_hot = layer_one_hot(known)
    out = randomise_layers(one_hot, np.random.default_rng(3))
    assert out.shape == one_hot.shape and np.all(out.sum(1) == 1)
    layer, given = out.argmax(1), one_hot.argmax(1)
    assert np.mean(layer == 0) == pytest.approx(LAYER_UNKNOWN_FRACTION, abs=0.02)
    assert np.mean((layer != 0) & (layer != given)) == pytest.approx(LAYER_WRONG_FRACTION, abs=0.015)
    unknown = layer_one_hot(["unknown"] * 50)
    assert np.array_equal(randomise_layers(unknown, np.random.default_rng(3)).argmax(1), np.zeros(50))  # stays unknown
    x = np.zeros((6, 1100 + len(LAYER_ORDER)), np.float32)
    x[:, 1100 + 1] = 1.0
    assert augment_inputs(x, np.random.default_rng(0))[:, 1100:].sum(1).tolist() == [1.0] * 6
