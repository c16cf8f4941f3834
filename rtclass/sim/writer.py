"""``rtclass simulate``: a simulation on disk as SpikeGLX files plus a ground-truth phy folder."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from rtclass.classify.offline import LAYER_FILE
from rtclass.config import PreprocessConfig, SimulateConfig
from rtclass.errors import PublishError
from rtclass.evaluation.scoring import filtered_template_peaks, measured_noise_sd
from rtclass.formats.phy import write_tsv
from rtclass.formats.spikeglx import np_meta_fields, write_recording
from rtclass.sim.recording import Simulation

RECORDING_NAME = "rtclass_sim"
#: samples rendered and written at a time; the first block's noise level defines the SNR of
#: the ground truth
WRITE_BLOCK_SAMPLES = 30000


def uv_per_bit(kind: str) -> float:
    f = np_meta_fields(kind)
    gain = 500.0 if kind == "np1" else 80.0
    return float(f["imAiRangeMax"]) / float(f["imMaxInt"]) / gain * 1e6


def write_simulation(
    cfg: SimulateConfig, out_dir: str | Path, progress: Callable[[int, int], None] | None = None
) -> tuple[Path, Simulation]:
    """Render ``cfg`` to ``out_dir/rtclass_sim.ap.bin`` (+ ``.ap.meta``) and ``out_dir/ground_truth``."""
    out = Path(out_dir)
    try:
        (out / "ground_truth").mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PublishError(f"cannot create output folder {out}: {exc.strerror}; choose a writable --out") from exc
    sim = Simulation(cfg)
    bin_path = out / f"{RECORDING_NAME}.ap.bin"
    scale = np.float32(1.0 / uv_per_bit(cfg.probe))
    n_ap = sim.n_channels
    syn = sim.synthesizer()
    noise_sd = None
    try:
        with open(bin_path, "wb") as f:
            for block in syn.blocks(WRITE_BLOCK_SAMPLES):
                if noise_sd is None:
                    noise_sd = measured_noise_sd(block, PreprocessConfig(), sim.fs)
                frames = np.zeros((block.shape[0], n_ap + 1), "<i2")
                frames[:, :n_ap] = np.clip(np.rint(block * scale), -32768, 32767)
                f.write(frames.tobytes())
                if progress is not None:
                    progress(syn.next_sample, sim.n_samples)
    except OSError as exc:
        raise PublishError(f"cannot write {bin_path}: {exc.strerror}") from exc
    write_recording(
        bin_path,
        None,
        cfg.probe,
        sim.fs,
        sim.probe.positions_um,
        n_samples=sim.n_samples,
        extra_meta={"rtclassSimSeed": str(cfg.seed)},
    )
    write_ground_truth(sim, out / "ground_truth", bin_path, noise_sd)
    return bin_path, sim


def write_ground_truth(sim: Simulation, folder: Path, bin_path: Path, noise_sd_uv: np.ndarray) -> None:
    """The phy folder of the true sort, with cell types and layers; SNR and peak channel as the
    default pipeline's band-pass sees them against the measured noise ``noise_sd_uv``
    (``cluster_snr.tsv``, ``cluster_peak_channel.tsv``)."""
    n_units = len(sim.units)
    ids = np.arange(n_units)
    np.save(folder / "spike_times.npy", sim.spike_times.astype(np.int64))
    np.save(folder / "spike_clusters.npy", sim.spike_units.astype(np.int32))
    np.save(folder / "spike_templates.npy", sim.spike_units.astype(np.int32))
    np.save(folder / "amplitudes.npy", sim.spike_scales.astype(np.float32))
    np.save(folder / "templates.npy", sim.dense_templates())
    np.save(folder / "channel_map.npy", np.arange(sim.n_channels, dtype=np.int32))
    np.save(folder / "channel_positions.npy", sim.probe.positions_um.astype(np.float64))
    np.save(folder / "whitening_mat_inv.npy", np.eye(sim.n_channels, dtype=np.float32))
    (folder / "params.py").write_text(
        f"dat_path = ['../{bin_path.name}']\n"
        f"n_channels_dat = {sim.n_channels + 1}\n"
        "dtype = 'int16'\n"
        "offset = 0\n"
        f"sample_rate = {sim.fs!r}\n"
        "hp_filtered = False\n"
    )
    write_tsv(folder / "cluster_cell_type.tsv", "cell_type", ids, [u.cell_type for u in sim.units])
    write_tsv(folder / LAYER_FILE, "layer", ids, [u.layer for u in sim.units])
    snr, peak = filtered_template_peaks(sim.dense_templates(), noise_sd_uv, PreprocessConfig(), sim.fs)
    write_tsv(folder / "cluster_snr.tsv", "snr", ids, [f"{v:.2f}" for v in snr])
    write_tsv(folder / "cluster_peak_channel.tsv", "peak_channel", ids, list(peak))
    write_tsv(folder / "cluster_depth_um.tsv", "depth_um", ids, [f"{u.xyz_um[1]:.1f}" for u in sim.units])
