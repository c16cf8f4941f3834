"""rtclass: real-time cell-type labels for high-density neural probes."""

from importlib import resources
from pathlib import Path

#: the one definition of the version (pyproject.toml reads it: ``[tool.setuptools.dynamic]``)
__version__ = "0.1.0"


def package_data_path(*parts: str) -> Path:
    """A file or folder shipped inside the package (``models/``, ``configs/``), wherever rtclass is installed.

    Found with ``importlib.resources``, so a wheel install, an editable install and a source checkout
    all give the copy that belongs to the ``rtclass`` being run.
    """
    return Path(str(resources.files(__name__).joinpath(*parts)))
