"""The version is written once (python/lmcodec/_version.py): the installed
metadata, the package, the C library and the public C header all say it."""

import importlib.metadata
import re

import lmcodec
from conftest import ROOT
from lmcodec import _core



def test_package_version_is_the_installed_metadata_version():
    assert re.fullmatch(r"\d+\.\d+\.\d+", lmcodec.__version__)
    assert lmcodec.__version__ == importlib.metadata.version("lmcodec")


def test_c_library_and_header_say_the_same_version():
    assert _core.version() == lmcodec.__version__  # lmc_version()
    header = (ROOT / "src" / "cpp" / "include" / "lmcodec.h").read_text()
    parts = [re.search(rf"#define LMC_VERSION_{p} (\d+)", header).group(1) for p in ("MAJOR", "MINOR", "PATCH")]
    assert ".".join(parts) == lmcodec.__version__


def test_version_is_written_in_one_file():
    text = (ROOT / "python" / "lmcodec" / "_version.py").read_text()
    assert f'__version__ = "{lmcodec.__version__}"' in text
    for f in ("pyproject.toml", "CMakeLists.txt", "python/lmcodec/__init__.py"):
        assert lmcodec.__version__ not in (ROOT / f).read_text(), f
