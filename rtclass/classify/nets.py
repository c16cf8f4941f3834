"""PyTorch modules of the classifier (training and export only; imports torch).

The architecture follows C4's (Beau et al., Cell 2025; npyx/c4): a small CNN encodes the 10 x 101
3D-ACG (conv 1x10 -> average pool 2x2 -> ReLU -> batch norm -> conv 5x1 -> average pool 1x2 ->
ReLU -> batch norm -> 368 -> 200 -> 20 of which the first 10 are kept), an MLP encodes the 90
waveform samples (90 -> 600 -> 300 -> 20, GELU, first 10 kept), both codes (and optionally the
4-value layer one-hot) are batch-normalised and classified by 100 ReLU units and a linear output
layer (which also sees the layer). Module and parameter names match C4's state dicts so that
published C4 weights load into ``CellTypeNet`` unchanged.
"""

from __future__ import annotations

import torch
from torch import nn

from rtclass.classify.layout import ACG_SHAPE, ACG_SIZE, WAVE_SIZE

LATENT = 10


class AcgEncoder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, kernel_size=(1, 10))
        self.maxpool1 = nn.AvgPool2d((2, 2))
        self.batchnorm1 = nn.BatchNorm2d(8)
        self.conv2 = nn.Conv2d(8, 16, kernel_size=(5, 1))
        self.maxpool2 = nn.AvgPool2d((1, 2))
        self.batchnorm2 = nn.BatchNorm2d(16)
        self.fc1 = nn.Linear(16 * 1 * 23, 200)
        self.fc2 = nn.Linear(200, 2 * LATENT)
        self.dropout = nn.Dropout(0.2)

    def forward(self, acg: torch.Tensor) -> torch.Tensor:
        x = acg.reshape(-1, 1, *ACG_SHAPE)
        x = self.batchnorm1(torch.relu(self.maxpool1(self.conv1(x))))
        x = self.batchnorm2(torch.relu(self.maxpool2(self.conv2(x))))
        x = self.dropout(torch.relu(self.fc1(x.flatten(1))))
        return self.fc2(x)[:, :LATENT]


class WaveEncoder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Linear(WAVE_SIZE, 600),
            nn.GELU(),
            nn.Dropout(0.1),
            nn.Linear(600, 300),
            nn.GELU(),
            nn.Dropout(0.1),
            nn.Linear(300, 2 * LATENT),
        )

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        return self.encoder(wave)[:, :LATENT]


class CellTypeNet(nn.Module):
    """features [batch, 1100 (+4)] -> logits [batch, n_classes]."""

    def __init__(self, n_classes: int, use_layer: bool = False) -> None:
        super().__init__()
        self.use_layer = use_layer
        n_layer = 4 if use_layer else 0
        self.acg_head = AcgEncoder()
        self.wvf_head = WaveEncoder()
        self.fc1 = nn.Linear(2 * LATENT + n_layer, 100)
        self.fc2 = nn.Linear(100 + n_layer, n_classes)
        self.batch_norm = nn.BatchNorm1d(2 * LATENT + n_layer)

    def penultimate(self, x: torch.Tensor) -> torch.Tensor:
        """The input of the output layer (what a last-layer Laplace approximation needs)."""
        acg, wave = x[:, :ACG_SIZE], x[:, ACG_SIZE : ACG_SIZE + WAVE_SIZE]
        z = torch.cat([self.acg_head(acg), self.wvf_head(wave)], dim=1)
        if self.use_layer:
            layer = x[:, ACG_SIZE + WAVE_SIZE :]
            z = torch.cat([z, layer], dim=1)
        h = torch.relu(self.fc1(self.batch_norm(z)))
        return torch.cat([h, x[:, ACG_SIZE + WAVE_SIZE :]], dim=1) if self.use_layer else h

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.penultimate(x))


class EnsembleMean(nn.Module):
    """Mean of the members' softmax probabilities: what the ONNX model outputs."""

    def __init__(self, members: list[nn.Module]) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([torch.softmax(m(x), dim=1) for m in self.members]).mean(0)


class FoldedAcgEncoder(nn.Module):
    """``AcgEncoder`` with each average pool folded into the convolution before it (both are
    linear and come before the ReLU, so the result is the same up to rounding): the first
    convolution becomes a 2 x 11 kernel with stride 2, the second a 5 x 2 kernel with stride
    (1, 2). onnxruntime then computes a quarter of the first convolution's outputs and runs no
    pooling (the convolutions and pools were half of the model's inference time)."""

    def __init__(self, src: AcgEncoder) -> None:
        super().__init__()
        w1, b1 = src.conv1.weight.detach(), src.conv1.bias.detach()  # (8, 1, 1, 10)
        k = w1.shape[-1]
        folded1 = torch.zeros(w1.shape[0], 1, 2, k + 1)
        for dx in (0, 1):
            folded1[:, :, :, dx : dx + k] += w1 / 4  # the same for both pooled rows
        self.conv1 = nn.Conv2d(1, w1.shape[0], kernel_size=(2, k + 1), stride=(2, 2))
        self.conv1.weight.data, self.conv1.bias.data = folded1, b1.clone()
        w2, b2 = src.conv2.weight.detach(), src.conv2.bias.detach()  # (16, 8, 5, 1)
        self.conv2 = nn.Conv2d(w2.shape[1], w2.shape[0], kernel_size=(w2.shape[2], 2), stride=(1, 2))
        self.conv2.weight.data, self.conv2.bias.data = torch.cat([w2 / 2, w2 / 2], dim=3), b2.clone()
        self.batchnorm1, self.batchnorm2 = src.batchnorm1, src.batchnorm2
        self.fc1, self.fc2 = src.fc1, src.fc2

    def forward(self, acg: torch.Tensor) -> torch.Tensor:
        x = acg.reshape(-1, 1, *ACG_SHAPE)
        x = self.batchnorm1(torch.relu(self.conv1(x)))
        x = self.batchnorm2(torch.relu(self.conv2(x)))
        return self.fc2(torch.relu(self.fc1(x.flatten(1))))[:, :LATENT]


def fold_for_export(module: nn.Module) -> nn.Module:
    """A copy of ``module`` whose ACG encoders are folded (``FoldedAcgEncoder``)."""
    import copy

    out = copy.deepcopy(module).eval()
    for parent in list(out.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, AcgEncoder):
                setattr(parent, name, FoldedAcgEncoder(child).eval())
    return out
