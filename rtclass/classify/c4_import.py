"""``rtclass import-c4 ARCHIVE.tar.gz [--hessians HESSIANS.pt] --out M.onnx``: a published C4
ensemble (Beau et al., Cell 2025; npyx) as one ONNX model for rtclass's live path.

The archive holds ``models/model_<i>.pt``, one PyTorch state dict per ensemble member, read with
``torch.load(weights_only=True)`` (tensors only: no pickled code runs). The architecture is
rebuilt (``nets.CellTypeNet``, same parameter names) with the class count and the layer input read
from the weights' shapes. Classes are in npyx's index order: GoC, MLI, MFB, PkC_ss, PkC_cs.

C4 does not average plain softmax outputs: each member's last layer (``fc2``) is calibrated by a
Kronecker-factored last-layer Laplace approximation (laplace-torch 0.1a2: ``Laplace(model,
"classification", subset_of_weights="last_layer", hessian_structure="kron")``, the stored
likelihood Hessian factors from ``hessians.pt``, the prior precision fitted by
``optimize_prior_precision("marglik")``, predictions with the GLM predictive and the probit link).
With ``--hessians`` that calibration is baked into the graph: for a member with output-layer input
``phi`` and logits ``f``:

    psi = Q2^T phi ;  var = (Q1 * Q1) @ ((1 / (l1 l2^T + delta)) @ psi^2) + (Qb * Qb) @ (1 / (lb + delta))
    p = softmax(f / sqrt(1 + pi / 8 * var))

where (Q1, l1) and (Q2, l2) are the eigen-decompositions of the output-side and input-side Kronecker
factors of the weight block, (Qb, lb) that of the bias block, and delta the prior precision, found
as laplace does: 100 Adam steps (lr 0.1) on log(delta) from delta = 1, minimising
0.5 * (sum log(lambda + delta) - n log(delta) + delta ||theta||^2) over the 505 posterior
eigenvalues lambda and the last layer's parameters theta. Without ``--hessians`` the model averages
plain softmax outputs, and its model card says so.
"""

from __future__ import annotations

import io
import re
import tarfile
from pathlib import Path

import numpy as np

from rtclass.classify.layout import C4_CLASSES
from rtclass.classify.train import export_onnx, require_training_extra, write_card
from rtclass.errors import InputError, ModelError

PRIOR_STEPS = 100
PRIOR_LR = 0.1


def read_archive(path: str | Path) -> list[dict]:
    """State dicts of the members, in the order of the integer in ``model_<i>.pt``."""
    import torch

    path = Path(path)
    if not path.exists():
        raise InputError(f"{path} does not exist")
    try:
        tar = tarfile.open(path, "r:*")
    except tarfile.TarError as exc:
        raise InputError(f"{path} is not a tar archive: {exc}") from exc
    members = []
    with tar:
        for m in tar.getmembers():
            match = re.search(r"model_(\d+)\.pt$", m.name)
            if m.isfile() and match:
                data = tar.extractfile(m).read()
                try:
                    state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
                except Exception as exc:  # noqa: BLE001 - torch raises several kinds
                    raise InputError(f"{path}: {m.name} is not a state dict of tensors ({exc})") from exc
                members.append((int(match.group(1)), state))
    if not members:
        raise InputError(f"{path} holds no models/model_<i>.pt files: is it a C4 trained_models.tar.gz?")
    return [s for _, s in sorted(members, key=lambda t: t[0])]


def build_member(state: dict):
    from rtclass.classify.nets import CellTypeNet

    try:
        n_classes = int(state["fc2.weight"].shape[0])
        use_layer = int(state["batch_norm.weight"].shape[0]) == 24
    except KeyError as exc:
        raise ModelError(f"the state dict lacks {exc}: not C4's cerebellum model") from exc
    if n_classes != len(C4_CLASSES):
        raise ModelError(
            f"this C4 model has {n_classes} classes; only the 5-class cerebellum models are supported "
            "(MLI-clustering models split MLIs into two classes rtclass does not publish)"
        )
    net = CellTypeNet(n_classes, use_layer)
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ModelError(f"the weights do not fit C4's architecture: {str(exc).splitlines()[0]}") from exc
    return net.eval(), use_layer


def prior_precision(eigenvalues: np.ndarray, theta: np.ndarray) -> float:
    """laplace-torch's marginal-likelihood prior precision (see the module docstring)."""
    import torch

    lam = torch.as_tensor(eigenvalues, dtype=torch.float32)
    sq = torch.as_tensor(float((theta**2).sum()), dtype=torch.float32)
    n = lam.numel()
    log_delta = torch.zeros(1, requires_grad=True)
    opt = torch.optim.Adam([log_delta], lr=PRIOR_LR)
    for _ in range(PRIOR_STEPS):
        opt.zero_grad()
        delta = log_delta.exp()
        neg_log_ml = 0.5 * (torch.log(lam + delta).sum() - n * torch.log(delta) + delta * sq)
        neg_log_ml.backward()
        opt.step()
    return float(log_delta.exp().detach())


def calibrated_member(net, hessian: dict):
    """The member's probabilities with the probit-approximated Laplace predictive baked in."""
    import torch
    from torch import nn

    try:
        (l1, l2), (lb,) = hessian["eigenvalues"]
        (q1, q2), (qb,) = hessian["eigenvectors"]
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"hessians entry is not C4's Kronecker layout ({exc})") from exc
    w = net.fc2.weight.detach().numpy()
    b = net.fc2.bias.detach().numpy()
    l1, l2, lb = (np.clip(np.asarray(v, np.float64), 0, None) for v in (l1, l2, lb))
    q1, q2, qb = (np.asarray(v, np.float64) for v in (q1, q2, qb))
    if q1.shape != (w.shape[0], w.shape[0]) or q2.shape != (w.shape[1], w.shape[1]) or qb.shape != (b.size, b.size):
        raise ModelError(f"hessian factors {q1.shape}, {q2.shape}, {qb.shape} do not fit the output layer {w.shape}")
    eig = np.concatenate([np.outer(l1, l2).ravel(), lb])
    delta = prior_precision(eig, np.concatenate([w.ravel(), b]))

    class Calibrated(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = net
            self.register_buffer("q2", torch.tensor(q2, dtype=torch.float32))
            self.register_buffer("m", torch.tensor(1.0 / (np.outer(l1, l2) + delta), dtype=torch.float32))
            self.register_buffer("q1sq", torch.tensor(q1**2, dtype=torch.float32))
            self.register_buffer("vb", torch.tensor((qb**2) @ (1.0 / (lb + delta)), dtype=torch.float32))

        def forward(self, x):
            phi = self.net.penultimate(x)
            f = self.net.fc2(phi)
            psi = phi @ self.q2
            var = (psi * psi) @ self.m.T @ self.q1sq.T + self.vb
            return torch.softmax(f / torch.sqrt(1.0 + np.pi / 8.0 * var), dim=1)

    return Calibrated().eval(), delta


def import_c4(archive: str | Path, out: str | Path, hessians: str | Path | None = None) -> dict:
    """Rebuild, (calibrate,) and export a C4 ensemble to ``out``; returns what the model card says."""
    require_training_extra("rtclass import-c4")
    import torch
    from torch import nn

    states = read_archive(archive)
    nets = [build_member(s) for s in states]
    use_layer = nets[0][1]
    deltas = []
    if hessians is not None:
        h = torch.load(str(hessians), map_location="cpu", weights_only=True)
        if not isinstance(h, (list, tuple)) or len(h) != len(nets):
            raise ModelError(
                f"{hessians} has {len(h) if isinstance(h, (list, tuple)) else 'no list of'} entries for "
                f"{len(nets)} models"
            )
        members = []
        for (net, _), entry in zip(nets, h):
            m, d = calibrated_member(net, entry)
            members.append(m)
            deltas.append(d)
        calibration = (
            "C4's last-layer Laplace (Kronecker factors from hessians.pt, marglik prior precision), probit link"
        )
    else:
        members = [nn.Sequential(net, nn.Softmax(dim=1)) for net, _ in nets]
        calibration = "none: plain softmax mean (C4 itself calibrates with hessians.pt; pass --hessians to match it)"

    class Mean(nn.Module):
        def __init__(self):
            super().__init__()
            self.members = nn.ModuleList(members)

        def forward(self, x):
            return torch.stack([m(x) for m in self.members]).mean(0)

    out = Path(out)
    path = export_onnx(Mean(), out, C4_CLASSES, use_layer, calibration, len(members))
    info = {
        "summary": f"C4 ensemble imported from {Path(archive).name} (Beau et al., Cell 2025): {len(members)} members.",
        "classes": list(C4_CLASSES),
        "use_layer": use_layer,
        "calibration": calibration,
        "prior_precisions": deltas,
        "source": str(archive),
        "limits": "Weights as published by the C4 authors; rtclass computes C4's features itself "
        "(rtclass.features.c4, parity-tested against npyx 4.3.1).",
    }
    write_card(out.parent, path, info)
    return info
