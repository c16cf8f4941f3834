"""``rtclass classify KS_DIR`` (``rtclass.classify.offline``): every featured cluster predicted, C4's
three per-cluster files written into the folder, the layer read from ``cluster_layer.tsv`` when
the model takes it."""

import numpy as np
import pytest

from rtclass.classify.layout import RTCLASS_CLASSES, confidence_ratio
from rtclass.classify.model import DEFAULT_MODEL, CellTypeModel
from rtclass.classify.offline import classify_folder, load_model_or_none
from rtclass.classify.phy_features import FeatureSet
from rtclass.errors import ModelError


class ScriptedModel:
    """Stands in for CellTypeModel: cluster k gets the k-th row of ``probs``."""

    classes = RTCLASS_CLASSES

    def __init__(self, probs, use_layer=False):
        self.probs = np.asarray(probs, np.float32)
        self.use_layer = use_layer
        self.layers = None

    def predict(self, acg3d, waveform, layers=None):
        assert acg3d.shape == (len(self.probs), 10, 101) and waveform.shape == (len(self.probs), 90)
        self.layers = layers
        return self.probs

    def label(self, p, threshold):
        return CellTypeModel.label(self, p, threshold)


def _features(ids):
    n = len(ids)
    return FeatureSet(np.array(ids), np.zeros((n, 10, 101), np.float32), np.zeros((n, 90), np.float32))


def _tsv(path):
    lines = path.read_text().splitlines()
    return lines[0], dict(line.split("\t") for line in lines[1:])


def test_three_files_per_cluster_as_c4_writes_them(tmp_path):
    probs = [[0.8, 0.1, 0.05, 0.03, 0.02], [0.1, 0.1, 0.1, 0.3, 0.4], [0.05, 0.05, 0.05, 0.05, 0.8]]
    counts = classify_folder(tmp_path, _features([3, 17, 40]), ScriptedModel(probs), threshold=2.0)
    assert counts == {"MFB": 1, "PkC_ss": 1, "unlabeled": 1}  # 0.4 / 0.3 < 2: no label
    head, types = _tsv(tmp_path / "cluster_predicted_cell_type.tsv")
    assert head == "cluster_id\tpredicted_cell_type" and types == {"3": "PkC_ss", "17": "unlabeled", "40": "MFB"}
    head, top = _tsv(tmp_path / "cluster_pred_probability.tsv")
    assert head == "cluster_id\tpred_probability" and top == {"3": "0.8000", "17": "0.4000", "40": "0.8000"}
    head, ratio = _tsv(tmp_path / "cluster_confidence_ratio.tsv")
    assert head == "cluster_id\tconfidence_ratio"
    want = confidence_ratio(np.array(probs, np.float32))
    assert [float(ratio[k]) for k in ("3", "17", "40")] == pytest.approx(want.tolist(), abs=1e-3)


def test_a_lower_threshold_labels_more(tmp_path):
    probs = [[0.1, 0.1, 0.1, 0.3, 0.4]]
    assert classify_folder(tmp_path, _features([1]), ScriptedModel(probs), threshold=1.2) == {"MFB": 1}


def test_the_layer_comes_from_cluster_layer_tsv(tmp_path):
    (tmp_path / "cluster_layer.tsv").write_text("cluster_id\tlayer\n1\tPCL\n2\tGCL\n")
    model = ScriptedModel([[0.9, 0.025, 0.025, 0.025, 0.025]] * 3, use_layer=True)
    classify_folder(tmp_path, _features([1, 2, 5]), model, 2.0)
    assert model.layers == ["PCL", "GCL", "unknown"]  # a cluster the table does not list: unknown
    (tmp_path / "cluster_layer.tsv").unlink()
    classify_folder(tmp_path, _features([1, 2, 5]), model, 2.0)
    assert model.layers == ["unknown"] * 3
    plain = ScriptedModel([[0.9, 0.025, 0.025, 0.025, 0.025]])
    classify_folder(tmp_path, _features([1]), plain, 2.0)
    assert plain.layers is None  # a model without the layer input gets none


def test_which_model_is_loaded(tmp_path):
    assert load_model_or_none("none") is None
    default = load_model_or_none(None)
    assert DEFAULT_MODEL.exists() and isinstance(default, CellTypeModel) and default.path == DEFAULT_MODEL
    with pytest.raises(ModelError, match="does not exist"):
        load_model_or_none(str(tmp_path / "missing.onnx"))
