"""A second generator of labelled cerebellar units, designed independently of ``rtclass.sim``.

rtclass's classifier is trained on its own simulator; to see whether it learnt cerebellar
physiology or one generator's quirks, it has to be trained on one generator and tested on another
(and the reverse). This package is that other generator. It shares nothing with the first one but
the output format: its spike trains, waveform model, noise and sorting imperfections were built
from the physiology literature without looking at the first generator's models.

- ``celltypes``: per-type parameter distributions (wide: awake and anaesthetised, mouse, rat,
  monkey), each traced to a source or marked as an estimate.
- ``trains``: spike-train processes: inverse-Gaussian renewal with a dead time in rescaled time
  (Purkinje simple spikes, Golgi cells, mossy fibre tonic firing), an escape-noise hazard with
  exponential refractory recovery (complex spikes, interneurons), behavioural-epoch and
  sinusoidal rate changes, a two-state burst process for mossy fibres, simple-spike pauses driven
  by the same cell's complex spikes.
- ``waveforms``: extracellular spikes from the time derivatives of a modelled intracellular action
  potential (capacitive vs. resistive current; the second derivative for axonal mossy fibre
  spikes), complex spikes with spikelets and a slow component, a causal acquisition band-pass,
  and the variety of a sorter's templates (length, trough position, 1/f residual noise, offsets,
  sign flips).
- ``units``: the entry point: ``generate_units``, sorting imperfections, ``unit_features`` and
  ``write_feature_set`` (the folder format ``rtclass train`` loads).
"""
