"""Generator C: labelled synthetic cerebellar units (PkC_ss, PkC_cs, MLI, GoC, MFB), designed
independently of the project's other two generators, to test whether a classifier trained on
those generalises.

**Spike trains** (``neuron.py``, ``drive.py``, ``trains.py``) come from noisy spiking neuron
models, not from renewal or hazard processes: a leaky integrate-and-fire neuron with an absolute
refractory period and spike-triggered adaptation, driven by Ornstein-Uhlenbeck (coloured) input
noise, integrated by a Numba kernel at 0.1 ms steps. Its mean drive is set from a wanted rate by
the Siegert formula (with the coloured-noise threshold shift and the mean adaptation current); a
slow behavioural signal (OU plus rest/move switching) modulates it over seconds, brief strong
input pulses evoke bursts (Golgi cells: burst then adaptation pause; mossy fibres: 300-1000 Hz),
and some Purkinje cells have down-states. A Purkinje cell is an inferior-olive neuron (slow LIF,
long AHP, subthreshold oscillation) whose spikes are complex spikes, coupled to its simple-spike
neuron: each complex spike resets and holds the simple-spike neuron for a pause graded with its
spikelet count.

**Waveforms** (``waveforms.py``) are shape-preserving splines through anchors at extracellular
waveform features drawn per unit (pre-trough positivity, half-width, trough-to-peak, peak/trough
ratio, recovery, late negativity of triphasic spikes); complex spikes add decrementing spikelets
and a slow component per spike. The template is the average of jittered, amplitude-varying
copies (with a fraction of another unit's spikes), band-passed as a Neuropixels channel and a
sorter do, plus averaged background noise, sometimes sign-flipped, offset, and cut to 61, 82 or 90
samples with the trough at a varying position.

**Sorting** (``sorting.py``): per-spike amplitudes (drift, fades, burst attenuation, noise)
against a detection threshold, collisions with neighbouring units' spikes, and contamination by
another unit's spikes, noise events and detected spikelets.

Every per-type range, with its source, is in ``celltypes.py``; ``units.write_feature_set``
writes a set in the folder format ``rtclass.classify.train.load_set`` reads.
"""
