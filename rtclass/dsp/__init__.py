"""Signal processing: Numba kernels (``*_kernels.py``) and the stage objects that own their state."""
