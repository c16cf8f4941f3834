"""Export, loading and C4 import of classifiers (torch is needed here: extra 'train')."""

import io
import tarfile

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from rtclass.classify.c4_import import calibrated_member, import_c4, prior_precision  # noqa: E402
from rtclass.classify.layout import C4_CLASSES, RTCLASS_CLASSES, input_size  # noqa: E402
from rtclass.classify.model import CellTypeModel  # noqa: E402
from rtclass.classify.nets import CellTypeNet, EnsembleMean  # noqa: E402
from rtclass.classify.train import export_onnx  # noqa: E402
from rtclass.errors import ModelError  # noqa: E402


def _random_net(seed, n_classes=5, use_layer=False):
    torch.manual_seed(seed)
    net = CellTypeNet(n_classes, use_layer)
    with torch.no_grad():  # non-trivial batch-norm statistics
        for m in net.modules():
            if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
    return net.eval()


def _inputs(n, use_layer=False, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 1, (n, input_size(use_layer))).astype(np.float32)
    if use_layer:
        x[:, -4:] = np.eye(4, dtype=np.float32)[rng.integers(0, 4, n)]
    return x


def test_onnx_export_matches_torch(tmp_path):
    nets = [_random_net(s) for s in range(3)]
    path = export_onnx(EnsembleMean(nets), tmp_path / "m.onnx", RTCLASS_CLASSES, False, "none", 3)
    x = _inputs(17)
    with torch.no_grad():
        want = EnsembleMean(nets).eval()(torch.from_numpy(x)).numpy()
    model = CellTypeModel(path)
    got = model.session.run(None, {"features": x})[0]
    assert np.abs(got - want).max() <= 1e-5
    assert model.classes == RTCLASS_CLASSES and not model.use_layer


def test_loader_refuses_what_is_not_an_rtclass_model(tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        CellTypeModel(tmp_path / "missing.onnx")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"this is not onnx at all")
    with pytest.raises(ModelError, match="not a valid ONNX model"):
        CellTypeModel(junk)
    plain = tmp_path / "plain.onnx"
    torch.onnx.export(
        torch.nn.Linear(1100, 5), (torch.zeros(1, 1100),), str(plain), input_names=["features"], dynamo=False
    )
    with pytest.raises(ModelError, match="feature layout"):
        CellTypeModel(plain)
    good = export_onnx(
        EnsembleMean([_random_net(0)]), tmp_path / "good" / "model.onnx", RTCLASS_CLASSES, False, "none", 1
    )
    from rtclass.classify.train import write_card

    write_card(good.parent, good, {"classes": list(RTCLASS_CLASSES)})
    CellTypeModel(good)
    good.write_bytes(good.read_bytes() + b"\0")
    with pytest.raises(ModelError, match="sha256"):
        CellTypeModel(good)


def _c4_archive(path, nets):
    with tarfile.open(path, "w:gz") as tar:
        for i, net in enumerate(nets):
            buf = io.BytesIO()
            torch.save(net.state_dict(), buf)
            info = tarfile.TarInfo(f"models/model_{i}.pt")
            info.size = buf.tell()
            buf.seek(0)
            tar.addfile(info, buf)
    return path


def _hessian(seed, k=5, p=100):
    rng = np.random.default_rng(seed)

    def eig(n, scale):
        q, _ = np.linalg.qr(rng.normal(size=(n, n)))
        return torch.tensor(rng.uniform(0, scale, n), dtype=torch.float32), torch.tensor(q, dtype=torch.float32)

    (l1, q1), (l2, q2), (lb, qb) = eig(k, 3.0), eig(p, 2.0), eig(k, 50.0)
    return {
        "eigenvalues": [[l1, l2], [lb]],
        "eigenvectors": [[q1, q2], [qb]],
        "deltas": torch.zeros(2),
        "damping": False,
    }


def _dense_c4_probabilities(net, h, delta, x):
    """C4's calibrated predictive computed the slow way: full posterior covariance of fc2."""
    (l1, l2), (lb,) = [[v.double().numpy() for v in g] for g in h["eigenvalues"]]
    (q1, q2), (qb,) = [[v.double().numpy() for v in g] for g in h["eigenvectors"]]
    g = q1 @ np.diag(l1) @ q1.T
    a = q2 @ np.diag(l2) @ q2.T
    cov_w = np.linalg.inv(np.kron(g, a) + delta * np.eye(g.shape[0] * a.shape[0]))
    cov_b = np.linalg.inv(qb @ np.diag(lb) @ qb.T + delta * np.eye(qb.shape[0]))
    with torch.no_grad():
        phi = net.penultimate(torch.from_numpy(x)).double().numpy()
        f = net.fc2(torch.from_numpy(phi).float()).double().numpy()
    out = []
    for ph, fv in zip(phi, f):
        k = fv.size
        jw = np.kron(np.eye(k), ph[None, :])  # d f_i / d vec_rowmajor(W)
        var = np.diag(jw @ cov_w @ jw.T) + np.diag(cov_b)
        z = fv / np.sqrt(1 + np.pi / 8 * var)
        e = np.exp(z - z.max())
        out.append(e / e.sum())
    return np.array(out)


def test_import_c4_with_hessians_reproduces_c4s_calibrated_probabilities(tmp_path):
    nets = [_random_net(10 + i) for i in range(3)]
    archive = _c4_archive(tmp_path / "trained_models.tar.gz", nets)
    hessians = [_hessian(i) for i in range(3)]
    torch.save(hessians, tmp_path / "hessians.pt")
    out = tmp_path / "c4" / "model.onnx"
    info = import_c4(archive, out, tmp_path / "hessians.pt")
    model = CellTypeModel(out)
    assert model.classes == C4_CLASSES
    x = _inputs(9, seed=3)
    got = model.session.run(None, {"features": x})[0]
    want = np.mean(
        [_dense_c4_probabilities(n, h, d, x) for n, h, d in zip(nets, hessians, info["prior_precisions"])], 0
    )
    assert np.abs(got - want).max() <= 1e-4


def test_import_c4_without_hessians_is_the_plain_softmax_mean(tmp_path):
    nets = [_random_net(20 + i) for i in range(2)]
    archive = _c4_archive(tmp_path / "trained_models.tar.gz", nets)
    info = import_c4(archive, tmp_path / "plain.onnx")
    assert "plain softmax mean" in info["calibration"]
    x = _inputs(5, seed=4)
    with torch.no_grad():
        want = EnsembleMean(nets).eval()(torch.from_numpy(x)).numpy()
    got = CellTypeModel(tmp_path / "plain.onnx").session.run(None, {"features": x})[0]
    assert np.abs(got - want).max() <= 1e-5


def test_import_c4_layer_models_and_bad_archives(tmp_path):
    net = _random_net(30, use_layer=True)
    archive = _c4_archive(tmp_path / "layer.tar.gz", [net])
    import_c4(archive, tmp_path / "layer.onnx")
    model = CellTypeModel(tmp_path / "layer.onnx")
    assert model.use_layer and model.session.get_inputs()[0].shape[-1] == 1104
    six = _c4_archive(tmp_path / "six.tar.gz", [_random_net(31, n_classes=6)])
    with pytest.raises(ModelError, match="6 classes"):
        import_c4(six, tmp_path / "six.onnx")
    not_tar = tmp_path / "x.tar.gz"
    not_tar.write_bytes(b"garbage")
    from rtclass.errors import InputError

    with pytest.raises(InputError, match="not a tar archive"):
        import_c4(not_tar, tmp_path / "x.onnx")


def test_prior_precision_follows_the_marginal_likelihood_gradient():
    # the optimum of 0.5 (sum log(l + d) - n log d + d |theta|^2) satisfies sum 1/(l+d) - n/d + |theta|^2 = 0
    rng = np.random.default_rng(0)
    lam = rng.uniform(0, 5, 505)
    theta = rng.normal(0, 0.3, 505)
    d = prior_precision(lam, theta)
    grad = lambda d: np.sum(1 / (lam + d)) - lam.size / d + (theta**2).sum()  # noqa: E731
    assert d > 0 and abs(grad(d)) < abs(grad(1.0))  # 100 Adam steps move towards the optimum
    _ = calibrated_member  # exported API


def test_load_classifier_follows_the_card_and_checks_the_baseline(tmp_path):
    import json

    from rtclass.classify.baseline import PhysiologyBaseline
    from rtclass.classify.model import load_classifier, sha256

    path = export_onnx(EnsembleMean([_random_net(0)]), tmp_path / "model.onnx", RTCLASS_CLASSES, False, "none", 1)
    baseline = PhysiologyBaseline(RTCLASS_CLASSES, np.arange(40.0).reshape(5, 8), np.ones(8))
    baseline.save(tmp_path / "baseline.json")
    card = {"live_classifier": "baseline", "baseline": {"sha256": sha256(tmp_path / "baseline.json")}}
    (tmp_path / "model_card.json").write_text(json.dumps(card))
    assert isinstance(load_classifier(path), PhysiologyBaseline)
    assert isinstance(load_classifier(path, "model"), CellTypeModel)
    card["live_classifier"] = "model"
    (tmp_path / "model_card.json").write_text(json.dumps(card))
    assert isinstance(load_classifier(path), CellTypeModel)
    assert isinstance(load_classifier(path, "baseline"), PhysiologyBaseline)
    (tmp_path / "baseline.json").write_text((tmp_path / "baseline.json").read_text().replace("1.0", "2.0"))
    with pytest.raises(ModelError, match="does not match the sha256"):
        load_classifier(path, "baseline")
    (tmp_path / "baseline.json").unlink()
    with pytest.raises(ModelError, match="baseline.json does not exist"):
        load_classifier(path, "baseline")
    assert isinstance(load_classifier(path), CellTypeModel)  # auto: an imported C4 model has no baseline


def test_a_c4_archive_imported_labels_units_on_the_wire_of_a_live_run(recording, tmp_path):
    """C4's published format end to end: archive -> ``import_c4`` -> ``rtclass run --model`` on a
    simulated recording (true templates) -> labelled spikes received by a plain ZMQ subscriber."""
    import threading

    from rtclass.client import Subscriber
    from rtclass.config import Config
    from rtclass.pipeline.live import run_live
    from rtclass.publish.wire import CELL_TYPE_NAMES
    from tests.netutil import free_port

    archive = _c4_archive(tmp_path / "trained_models.tar.gz", [_random_net(s, 5) for s in range(2)])
    model = tmp_path / "c4.onnx"
    import_c4(archive, model, None)
    address = f"tcp://127.0.0.1:{free_port()}"
    cfg = Config().replace(
        source={"speed": 0.5},
        matching={"templates": str(recording.parent / "ground_truth")},
        classify={
            "model": str(model),
            "min_spikes": 5,
            "confidence_ratio": 1.0,
            "interval_s": 0.1,
            "hysteresis_ticks": 1,
        },
        publish={"zmq": True, "zmq_address": address, "lsl": False},
    )
    received, stop = [], threading.Event()

    def listen():
        with Subscriber(address, timeout_s=0.2) as sub:
            while not stop.is_set():
                batch = sub.receive(0.2)
                if batch is not None:
                    received.append(batch)

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    run_live(cfg, f"file:{recording}", str(tmp_path / "run"))
    stop.set()
    listener.join(5)
    spikes = np.concatenate(received) if received else np.zeros(0)
    assert spikes.size > 100
    labelled = spikes[spikes["cell_type"] > 0]
    assert labelled.size > 0  # labels from the imported C4 ensemble reached the wire
    assert {CELL_TYPE_NAMES[c] for c in np.unique(labelled["cell_type"])} <= set(C4_CLASSES)
    rows = (tmp_path / "run" / "cluster_predicted_cell_type.tsv").read_text().splitlines()[1:]
    assert {row.split("\t")[1] for row in rows} & set(C4_CLASSES)


def test_the_shipped_layer_aware_model_is_the_default_when_layers_are_known(tmp_path):
    from rtclass.classify.model import DEFAULT_LAYER_MODEL, DEFAULT_MODEL, default_model
    from rtclass.classify.offline import load_model_or_none

    assert default_model(False) == DEFAULT_MODEL and not CellTypeModel(DEFAULT_MODEL).use_layer
    assert default_model(True) == DEFAULT_LAYER_MODEL and CellTypeModel(DEFAULT_LAYER_MODEL).use_layer
    assert load_model_or_none(None, "model", layers_known=True).use_layer
    assert not load_model_or_none(None, "model", layers_known=False).use_layer
