"""rtclass: real-time cell-type labels for high-density neural probes."""

__version__ = "0.1.0"
