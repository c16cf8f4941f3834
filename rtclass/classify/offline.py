"""``rtclass classify KS_DIR``: C4-style cell types of a Kilosort/phy folder, written as C4 does."""

from __future__ import annotations

from pathlib import Path

from rtclass.classify.model import AUTO, Classifier, default_model, load_classifier
from rtclass.classify.phy_features import FeatureSet
from rtclass.formats.phy import write_tsv

#: C4's layer of each cluster (``cluster_id``, ``layer``: ML, PCL, GCL or unknown)
LAYER_FILE = "cluster_layer.tsv"


def load_model_or_none(path: str | None, which: str = AUTO, layers_known: bool = False) -> Classifier | None:
    """The named model (``none``: no model), or the shipped one: the layer-aware one when the
    clusters' layers are known (``cluster_layer.tsv``)."""
    if path == "none":
        return None
    if path is None:
        shipped = default_model(layers_known)
        return load_classifier(shipped, which) if shipped.exists() else None
    return load_classifier(path, which)


def layer_file(folder: str | Path) -> Path:
    """C4's per-cluster layer table in a phy folder."""
    return Path(folder) / LAYER_FILE


def classify_folder(folder: str | Path, feats: FeatureSet, model: Classifier, threshold: float) -> dict[str, int]:
    """Predict every featured cluster; write C4's three per-cluster files into ``folder``."""
    folder = Path(folder)
    layers = None
    if model.use_layer:
        path = layer_file(folder)
        table = dict(line.split("\t")[:2] for line in path.read_text().splitlines()[1:]) if path.exists() else {}
        layers = [table.get(str(c), "unknown") for c in feats.cluster_id]
    probs = model.predict(feats.acg3d, feats.waveform, layers)
    names, top, ratio = model.label(probs, threshold)
    ids = feats.cluster_id
    write_tsv(folder / "cluster_predicted_cell_type.tsv", "predicted_cell_type", ids, list(names))
    write_tsv(folder / "cluster_pred_probability.tsv", "pred_probability", ids, [f"{v:.4f}" for v in top])
    write_tsv(folder / "cluster_confidence_ratio.tsv", "confidence_ratio", ids, [f"{v:.3f}" for v in ratio])
    out: dict[str, int] = {}
    for n in names:
        out[str(n)] = out.get(str(n), 0) + 1
    return dict(sorted(out.items()))
