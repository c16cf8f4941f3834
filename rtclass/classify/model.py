"""The classifier on the live path: an ONNX model run by onnxruntime (never torch)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Union

import numpy as np

from rtclass import package_data_path
from rtclass.classify.layout import (
    DEFAULT_CONFIDENCE_RATIO,
    INPUT_NAME,
    LAYOUT,
    META_CLASSES,
    META_LAYOUT,
    META_USE_LAYER,
    assemble,
    input_size,
    label_by_confidence,
)
from rtclass.config import CLASSIFIER_CHOICES
from rtclass.errors import ModelError

if TYPE_CHECKING:
    from rtclass.classify.baseline import PhysiologyBaseline

#: the shipped models: package data (rtclass/models/), installed with the wheel
MODELS_DIR = package_data_path("models")
DEFAULT_MODEL_NAME = "rtclass-c4sim-v2"
DEFAULT_MODEL = MODELS_DIR / DEFAULT_MODEL_NAME / "model.onnx"
#: the shipped model that also takes each unit's layer: the default when the layers are known
DEFAULT_LAYER_MODEL_NAME = "rtclass-c4sim-v2-layer"
DEFAULT_LAYER_MODEL = MODELS_DIR / DEFAULT_LAYER_MODEL_NAME / "model.onnx"
CARD_NAME = "model_card.json"


def default_model(layers_known: bool) -> Path:
    """The shipped model to use when none is named: the layer-aware one when the units' layers are
    known (and it is installed), else the default."""
    return DEFAULT_LAYER_MODEL if layers_known and DEFAULT_LAYER_MODEL.exists() else DEFAULT_MODEL


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class CellTypeModel:
    """Loads and checks an rtclass/C4 ONNX classifier; ``predict`` gives class probabilities."""

    def __init__(self, path: str | Path, threads: int = 1):
        import onnxruntime as ort

        self.path = Path(path)
        if not self.path.exists():
            raise ModelError(
                f"model file {self.path} does not exist; pass --model M.onnx (in a source checkout, "
                "`python scripts/build_default_model.py` rebuilds the shipped default model)"
            )
        card = self.path.with_name(CARD_NAME)
        self.card = json.loads(card.read_text()) if card.exists() else {}
        if self.card.get("sha256") and self.card["sha256"] != sha256(self.path):
            raise ModelError(f"{self.path} does not match the sha256 in {card}: the file was changed or corrupted")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(str(self.path), opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ModelError(f"{self.path} is not a valid ONNX model ({str(exc).splitlines()[0]})") from exc
        meta = self.session.get_modelmeta().custom_metadata_map
        if meta.get(META_LAYOUT) != LAYOUT:
            raise ModelError(
                f"{self.path} was not made for rtclass's feature layout (layout {meta.get(META_LAYOUT)!r}, "
                f"expected {LAYOUT!r}); export it with `rtclass train`/`rtclass import-c4`"
            )
        self.classes = tuple(meta[META_CLASSES].split(","))
        #: the confidence ratio the card calibrated (``classify.confidence_ratio = 0``), else C4's
        self.confidence_ratio = float(self.card.get("confidence_ratio", DEFAULT_CONFIDENCE_RATIO))
        self.use_layer = meta.get(META_USE_LAYER) == "1"
        inputs = self.session.get_inputs()
        if len(inputs) != 1 or inputs[0].name != INPUT_NAME or inputs[0].shape[-1] != input_size(self.use_layer):
            raise ModelError(
                f"{self.path} takes {[(i.name, i.shape) for i in inputs]}; expected one input {INPUT_NAME!r} "
                f"of {input_size(self.use_layer)} features"
            )

    def predict(self, acg3d: np.ndarray, waveform: np.ndarray, layers=None) -> np.ndarray:
        """Probabilities ``[n, n_classes]`` in ``self.classes`` order."""
        if acg3d.shape[0] == 0:
            return np.zeros((0, len(self.classes)), np.float32)
        if self.use_layer and layers is None:
            layers = ["unknown"] * acg3d.shape[0]
        x = assemble(acg3d, waveform, layers if self.use_layer else None)
        return self.session.run(None, {INPUT_NAME: x})[0]

    def label(self, probabilities: np.ndarray, threshold: float = DEFAULT_CONFIDENCE_RATIO):
        """(class names, top probability, confidence ratio); below the threshold: 'unlabeled'."""
        return label_by_confidence(self.classes, probabilities, threshold)


#: what labels units: the network or the physiology baseline (same interface)
Classifier = Union["CellTypeModel", "PhysiologyBaseline"]

#: ``classify.classifier`` values
AUTO, NETWORK, BASELINE = CLASSIFIER_CHOICES


def load_classifier(path: str | Path, which: str = AUTO, threads: int = 1):
    """The classifier of a model folder: the ONNX network (``CellTypeModel``) or the physiology
    baseline beside it (``PhysiologyBaseline``, ``baseline.json``). ``auto``: the one its model card
    names (``live_classifier``: the better on a generator it was not trained on); the network when
    the card does not say or there is no baseline (an imported C4 model)."""
    from rtclass.classify.baseline import BASELINE_NAME, load_baseline

    model = CellTypeModel(path, threads)
    choice = model.card.get("live_classifier", NETWORK) if which == AUTO else which
    baseline_path = model.path.with_name(BASELINE_NAME)
    if choice != BASELINE:
        return model
    if not baseline_path.exists():
        if which == BASELINE:
            raise ModelError(f"classify.classifier = baseline, but {baseline_path} does not exist")
        return model
    expected = model.card.get("baseline", {}).get("sha256")
    if expected and expected != sha256(baseline_path):
        raise ModelError(f"{baseline_path} does not match the sha256 in its model card: the file was changed")
    return replace(load_baseline(baseline_path), confidence_ratio=model.confidence_ratio)


def describe_classifier(classifier) -> str:
    """One line naming a loaded classifier, for logs and metrics."""
    if isinstance(classifier, CellTypeModel):
        return f"the network {classifier.path}"
    return f"the physiology baseline {classifier.path}"
