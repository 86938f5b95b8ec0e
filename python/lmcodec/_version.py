"""The version of lmcodec: the one place it is written.

pyproject.toml reads it (scikit-build-core's regex metadata provider) and
CMakeLists.txt reads it for the C library (``lmc_version()``); bump it here.
"""

__version__ = "0.1.0"
