"""``rtclass train`` / ``rtclass export``: train an ensemble on labelled feature sets, evaluate it on
held-out sets, export it to ONNX with its model card. torch is imported inside the functions that
need it (extra ``train``).

A training set is a folder holding ``features.npz`` (``rtclass simulate --features-only``: arrays
``acg3d``, ``waveform``, ``cell_type``, ``layer``) and ``simulation.json`` (how it was made).
"""

from __future__ import annotations

import importlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rtclass.classify.layout import (
    INPUT_NAME,
    LAYOUT,
    META_CALIBRATION,
    META_CLASSES,
    META_LAYOUT,
    META_MEMBERS,
    META_USE_LAYER,
    OUTPUT_NAME,
    RTCLASS_CLASSES,
    assemble,
    input_size,
)
from rtclass.errors import InputError, RtclassError

log = logging.getLogger("rtclass.train")

OPSET = 17
#: what training and ONNX export import beyond the runtime dependencies: module -> the name a user knows
TRAINING_MODULES = {"torch": "PyTorch", "onnx": "onnx"}
TRAINING_EXTRA_INSTALL = "pip install 'rtclass[train]'"


def require_training_extra(task: str) -> None:
    """Fail with one line (no traceback from the CLI) when the extra ``train`` (torch, onnx) is not installed."""
    for module, known_as in TRAINING_MODULES.items():
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise RtclassError(f"{task} needs {known_as}: {TRAINING_EXTRA_INSTALL}") from exc


@dataclass
class LabelledSet:
    name: str
    x: np.ndarray  # [n, 1100 (+4)] float32
    y: np.ndarray  # [n] class index in RTCLASS_CLASSES
    description: dict


def load_set(folder: str | Path, use_layer: bool) -> LabelledSet:
    folder = Path(folder)
    path = folder / "features.npz"
    if not path.exists():
        raise InputError(f"{path} is missing; make training sets with `rtclass simulate --out DIR --features-only`")
    f = np.load(path)
    types = [str(t) for t in f["cell_type"]]
    unknown = sorted(set(types) - set(RTCLASS_CLASSES))
    if unknown:
        raise InputError(
            f"{path} has cell types {unknown} that the classifier does not know ({', '.join(RTCLASS_CLASSES)})"
        )
    y = np.array([RTCLASS_CLASSES.index(t) for t in types], np.int64)
    x = assemble(f["acg3d"], f["waveform"], [str(v) for v in f["layer"]] if use_layer else None)
    desc_path = folder / "simulation.json"
    desc = json.loads(desc_path.read_text()) if desc_path.exists() else {}
    return LabelledSet(folder.name, x, y, desc)


def balanced_accuracy(confusion: np.ndarray) -> float:
    recall = np.diag(confusion) / np.maximum(confusion.sum(1), 1)
    return float(recall[confusion.sum(1) > 0].mean())


def confusion_matrix(y: np.ndarray, pred: np.ndarray, n: int) -> np.ndarray:
    out = np.zeros((n, n), np.int64)
    np.add.at(out, (y, pred), 1)
    return out


def _train_member(x, y, n_classes, use_layer, seed, epochs, progress):
    import torch

    from rtclass.classify.nets import CellTypeNet

    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    net = CellTypeNet(n_classes, use_layer)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=1e-4)
    counts = np.bincount(y, minlength=n_classes)
    weights = torch.tensor(counts.sum() / np.maximum(counts, 1) / n_classes, dtype=torch.float32)  # class-balanced
    loss_fn = torch.nn.CrossEntropyLoss(weight=weights)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    batch = 64
    for epoch in range(epochs):
        net.train()
        order = rng.permutation(len(y))
        for a in range(0, len(y) - 1, batch):  # batches of >= 2 for batch norm
            idx = order[a : a + batch]
            if idx.size < 2:
                continue
            opt.zero_grad()
            loss = loss_fn(net(xt[idx]), yt[idx])
            loss.backward()
            opt.step()
        if progress is not None:
            progress(epoch + 1, epochs)
    net.eval()
    return net


def train_ensemble(
    train: list[LabelledSet],
    members: int,
    epochs: int,
    seed: int,
    use_layer: bool,
    progress: Callable[[int, int], None] | None = None,
) -> list:
    """``members`` networks, each on a bootstrap resample of the pooled sets, seeds seed..seed+members-1."""
    x = np.concatenate([s.x for s in train])
    y = np.concatenate([s.y for s in train])
    out = []
    for m in range(members):
        rng = np.random.default_rng(seed + m)
        boot = rng.integers(0, len(y), len(y))
        step = (lambda e, n, m=m: progress(m * epochs + e, members * epochs)) if progress else None
        out.append(_train_member(x[boot], y[boot], len(RTCLASS_CLASSES), use_layer, seed + m, epochs, step))
    return out


def ensemble_probabilities(nets: list, x: np.ndarray) -> np.ndarray:
    import torch

    from rtclass.classify.nets import EnsembleMean

    with torch.no_grad():
        return EnsembleMean(nets).eval()(torch.from_numpy(x)).numpy()


def evaluate(probabilities: np.ndarray, y: np.ndarray, classes=RTCLASS_CLASSES) -> dict:
    pred = probabilities.argmax(1)
    cm = confusion_matrix(y, pred, len(classes))
    return {
        "units": int(len(y)),
        "balanced_accuracy": balanced_accuracy(cm),
        "accuracy": float((pred == y).mean()),
        "confusion": cm.tolist(),
        "classes": list(classes),
    }


def export_onnx(module, path: str | Path, classes, use_layer: bool, calibration: str, n_members: int) -> Path:
    """Export a torch module mapping features -> probabilities, with rtclass's ONNX metadata."""
    require_training_extra("exporting a model to ONNX")
    import onnx
    import torch

    from rtclass.classify.nets import fold_for_export

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    module = fold_for_export(module)
    example = torch.zeros(2, input_size(use_layer))
    torch.onnx.export(
        module,
        (example,),
        str(path),
        input_names=[INPUT_NAME],
        output_names=[OUTPUT_NAME],
        dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
        opset_version=OPSET,
        dynamo=False,
    )
    model = onnx.load(str(path))
    for key, value in (
        (META_LAYOUT, LAYOUT),
        (META_CLASSES, ",".join(classes)),
        (META_USE_LAYER, "1" if use_layer else "0"),
        (META_MEMBERS, str(n_members)),
        (META_CALIBRATION, calibration),
    ):
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, str(path))
    return path


def write_card(out_dir: Path, model_path: Path, info: dict) -> None:
    from rtclass.classify.model import CARD_NAME, sha256

    card = {**info, "file": model_path.name, "sha256": sha256(model_path), "layout": LAYOUT}
    (out_dir / CARD_NAME).write_text(json.dumps(card, indent=2) + "\n")
    lines = [
        f"# Model card: {out_dir.name}",
        "",
        info.get("summary", ""),
        "",
        f"- file: `{model_path.name}` (ONNX opset {OPSET}), sha256 `{card['sha256']}`",
        f"- input: `{INPUT_NAME}` float32 [batch, {input_size(info.get('use_layer', False))}] ({LAYOUT}); "
        f"output: `{OUTPUT_NAME}` [batch, {len(info['classes'])}] mean probabilities, "
        f"classes {', '.join(info['classes'])}",
        f"- calibration: {info.get('calibration', 'none')}",
        "",
    ]
    if "training" in info:
        lines += ["## Training data", "", info["training"]["description"], ""]
        for s in info["training"]["sets"]:
            lines.append(f"- `{s['name']}`: {s['units']} units; {s.get('settings', '')}")
        lines.append("")
    if "evaluation" in info:
        lines += ["## Measured accuracy", ""]
        for name, ev in info["evaluation"].items():
            lines.append(
                f"- **{name}** ({ev['units']} units, {ev.get('description', '')}): balanced accuracy "
                f"{ev['balanced_accuracy']:.3f}, accuracy {ev['accuracy']:.3f}"
            )
            lines.append(f"  confusion (rows true, columns predicted; {', '.join(ev['classes'])}): {ev['confusion']}")
        lines.append("")
    if "limits" in info:
        lines += ["## Limits", "", info["limits"], ""]
    (out_dir / "model_card.md").write_text("\n".join(lines))


def train_command(
    data: list[str],
    out_dir: str,
    evaluation: list[str],
    members: int,
    epochs: int,
    seed: int,
    use_layer: bool,
    progress: Callable[[int, int], None] | None = None,
) -> dict:
    """Train, evaluate on held-out sets, export ``out_dir/model.onnx`` and its model card."""
    require_training_extra("rtclass train")
    train = [load_set(d, use_layer) for d in data]
    held = [load_set(d, use_layer) for d in evaluation]
    nets = train_ensemble(train, members, epochs, seed, use_layer, progress)
    out = Path(out_dir)
    from rtclass.classify.nets import EnsembleMean

    model_path = export_onnx(
        EnsembleMean(nets), out / "model.onnx", RTCLASS_CLASSES, use_layer, "none (softmax mean)", members
    )
    results = {}
    for s in [*train, *held]:
        ev = evaluate(ensemble_probabilities(nets, s.x), s.y)
        ev["description"] = ("training set" if s in train else "held out") + ": " + _describe(s.description)
        results[s.name] = ev
    info = {
        "summary": "Cell-type classifier for cerebellar units (C4 architecture), trained by rtclass on SYNTHETIC data "
        "from rtclass's simulator. Not trained or tested on real recordings.",
        "classes": list(RTCLASS_CLASSES),
        "use_layer": use_layer,
        "calibration": "none: mean of the members' softmax outputs",
        "ensemble_members": members,
        "epochs": epochs,
        "seed": seed,
        "training": {
            "description": "Simulated units (rtclass.sim), features computed as C4 does from ground-truth "
            "spike trains with 0-20 % of spikes removed and 0-5 % of another unit's spikes added, "
            "waveforms from the units' raw mean waveform plus averaging noise.",
            "sets": [{"name": s.name, "units": int(len(s.y)), "settings": _describe(s.description)} for s in train],
        },
        "evaluation": {k: v for k, v in results.items()},
        "limits": "Synthetic training data: the simulator's cell-type statistics follow published mouse data "
        "(see README), but real units differ in ways it does not model. No layer input. Treat its labels "
        "on real data as unvalidated.",
    }
    write_card(out, model_path, info)
    (out / "metrics.json").write_text(json.dumps(results, indent=2) + "\n")
    return results


def _describe(desc: dict) -> str:
    s = desc.get("simulate", {})
    if not s:
        return ""
    keys = ("seed", "duration_s", "units_per_type", "parameter_spread", "rate_scale", "width_scale")
    return ", ".join(f"{k}={s[k]}" for k in keys if k in s)
