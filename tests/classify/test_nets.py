"""The classifier's PyTorch modules (``rtclass.classify.nets``): C4's architecture and parameter
names, the ensemble mean, and the folded ACG encoder the ONNX export uses (same outputs)."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from rtclass.classify.layout import input_size  # noqa: E402
from rtclass.classify.nets import (  # noqa: E402
    LATENT,
    AcgEncoder,
    CellTypeNet,
    EnsembleMean,
    FoldedAcgEncoder,
    fold_for_export,
)


def _net(seed, n_classes=5, use_layer=False):
    torch.manual_seed(seed)
    net = CellTypeNet(n_classes, use_layer)
    with torch.no_grad():  # batch-norm statistics that are not the identity
        for m in net.modules():
            if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.5, 2.0)
    return net.eval()


def _x(n, use_layer=False, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 1, (n, input_size(use_layer))).astype(np.float32)
    if use_layer:
        x[:, -4:] = np.eye(4, dtype=np.float32)[rng.integers(0, 4, n)]
    return torch.from_numpy(x)


@pytest.mark.parametrize("use_layer", [False, True])
def test_logits_per_class_and_the_penultimate_layer(use_layer):
    net = _net(0, 6, use_layer)
    with torch.no_grad():
        x = _x(7, use_layer)
        assert net(x).shape == (7, 6)
        assert net.penultimate(x).shape == (7, 100 + (4 if use_layer else 0))
        assert net.acg_head(x[:, :1010]).shape == (7, LATENT) and net.wvf_head(x[:, 1010:1100]).shape == (7, LATENT)


def test_parameter_names_are_c4s():
    names = set(CellTypeNet(5).state_dict())
    for name in (
        "acg_head.conv1.weight",
        "acg_head.conv2.weight",
        "acg_head.fc1.weight",
        "acg_head.fc2.weight",
        "acg_head.batchnorm1.running_mean",
        "wvf_head.encoder.0.weight",
        "wvf_head.encoder.6.weight",
        "fc1.weight",
        "fc2.weight",
        "batch_norm.running_var",
    ):
        assert name in names, name


def test_the_ensemble_mean_averages_the_members_probabilities():
    nets = [_net(s) for s in range(3)]
    x = _x(9)
    with torch.no_grad():
        p = EnsembleMean(nets).eval()(x)
        want = torch.stack([torch.softmax(n(x), 1) for n in nets]).mean(0)
    assert torch.allclose(p, want) and torch.allclose(p.sum(1), torch.ones(9))


def test_the_folded_acg_encoder_gives_the_same_codes():
    torch.manual_seed(3)
    enc = _net(3).acg_head
    acg = _x(11)[:, :1010]
    with torch.no_grad():
        want = enc(acg)
        got = FoldedAcgEncoder(enc).eval()(acg)
    assert torch.allclose(got, want, atol=1e-5, rtol=1e-4)


def test_fold_for_export_folds_a_copy_and_keeps_the_outputs():
    nets = [_net(s, use_layer=True) for s in range(2)]
    model = EnsembleMean(nets).eval()
    folded = fold_for_export(model)
    assert not any(isinstance(m, AcgEncoder) for m in folded.modules())
    assert sum(isinstance(m, FoldedAcgEncoder) for m in folded.modules()) == 2
    assert all(isinstance(n.acg_head, AcgEncoder) for n in nets)  # the original is untouched
    x = _x(5, use_layer=True)
    with torch.no_grad():
        assert torch.allclose(folded(x), model(x), atol=1e-6)
