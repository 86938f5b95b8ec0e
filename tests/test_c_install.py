"""The installed C library: cmake --install gives the header, shared and static libraries, the weights,
lmcodec.pc and the CMake package; examples/c builds against it with pkg-config and with find_package."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

import lmcodec
from conftest import ROOT


pytestmark = pytest.mark.skipif(shutil.which("cmake") is None or shutil.which("pkg-config") is None
                                or shutil.which("cc") is None, reason="needs cmake, pkg-config and cc")


def sh(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    assert r.returncode == 0, f"{cmd}\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r.stdout


@pytest.fixture(scope="module")
def prefix(tmp_path_factory):
    build = ROOT / "build" / "c-install"
    gen = ["-G", "Ninja"] if shutil.which("ninja") else []
    sh(["cmake", "-S", str(ROOT), "-B", str(build), *gen, "-DLMCODEC_BUILD_PYTHON=OFF", "-DCMAKE_BUILD_TYPE=Release",
        "-DLMCODEC_INSTALL=ON"])
    sh(["cmake", "--build", str(build), "--target", "lmcodec", "lmcodec_static", "-j", str(os.cpu_count() or 2)])
    p = tmp_path_factory.mktemp("prefix")
    sh(["cmake", "--install", str(build), "--prefix", str(p)])
    return p


def test_install_layout(prefix):
    libdir = next(d for d in (prefix / "lib", prefix / "lib64") if d.exists())
    assert (prefix / "include" / "lmcodec.h").exists()
    assert list(libdir.glob("liblmcodec.so*")) and (libdir / "liblmcodec.a").exists()
    assert (libdir / "pkgconfig" / "lmcodec.pc").exists()
    assert (libdir / "cmake" / "lmcodec" / "lmcodecConfig.cmake").exists()
    shipped = sorted(p.name for p in (Path(lmcodec.__file__).parent / "models").glob("*.lmw"))
    assert sorted(p.name for p in (prefix / "share" / "lmcodec").glob("*.lmw")) == shipped


def test_example_builds_with_pkg_config(prefix, tmp_path):
    libdir = next(d for d in (prefix / "lib", prefix / "lib64") if d.exists())
    env = dict(os.environ, PKG_CONFIG_PATH=str(libdir / "pkgconfig"))
    flags = sh(["pkg-config", "--cflags", "--libs", "lmcodec"], env=env).split()
    assert sh(["pkg-config", "--modversion", "lmcodec"], env=env).strip() == lmcodec.__version__
    modeldir = Path(sh(["pkg-config", "--variable=modeldir", "lmcodec"], env=env).strip())
    exe = tmp_path / "roundtrip"
    sh(["cc", str(ROOT / "examples" / "c" / "roundtrip.c"), *flags, "-lm", f"-Wl,-rpath,{libdir}", "-o", str(exe)])
    out = tmp_path / "c.lmc"
    text = sh([str(exe), str(modeldir / "hyperprior.lmw"), "60", str(out)])
    assert "bpp" in text and "damaged stream refused" in text
    assert lmcodec.decode(out.read_bytes()).shape == (120, 160, 3)


def test_example_builds_with_find_package(prefix, tmp_path):
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "CMakeLists.txt").write_text(f"""
cmake_minimum_required(VERSION 3.18)
project(uses_lmcodec C CXX)
find_package(lmcodec {lmcodec.__version__.rsplit('.', 1)[0]} REQUIRED)
add_executable(roundtrip {ROOT / 'examples' / 'c' / 'roundtrip.c'})
target_link_libraries(roundtrip PRIVATE lmcodec::lmcodec_static m)
set_target_properties(roundtrip PROPERTIES LINKER_LANGUAGE CXX)
file(WRITE ${{CMAKE_BINARY_DIR}}/modeldir.txt "${{LMCODEC_MODEL_DIR}}")
""")
    gen = ["-G", "Ninja"] if shutil.which("ninja") else []
    sh(["cmake", "-S", str(proj), "-B", str(proj / "b"), *gen, f"-DCMAKE_PREFIX_PATH={prefix}"])
    sh(["cmake", "--build", str(proj / "b")])
    modeldir = Path((proj / "b" / "modeldir.txt").read_text())
    text = sh([str(proj / "b" / "roundtrip"), str(modeldir / "pca.lmw"), "50"])
    assert "codec 2" in text


def test_installed_library_finds_its_weights(prefix, tmp_path):
    """lmc_model_open_for_stream with no search path finds the stream's weights in the installed
    share/lmcodec, found from the shared library's own place (the prefix may be moved)."""
    libdir = next(d for d in (prefix / "lib", prefix / "lib64") if d.exists())
    moved = tmp_path / "moved"
    shutil.copytree(prefix, moved, symlinks=True)
    mlib = moved / libdir.name
    env = dict(os.environ, PKG_CONFIG_PATH=str(mlib / "pkgconfig"))
    env.pop("LMCODEC_MODEL_PATH", None)
    flags = sh(["pkg-config", "--cflags", "--libs", "lmcodec"], env=env).split()
    exe = tmp_path / "decode"
    sh(["cc", str(ROOT / "examples" / "c" / "decode.c"), *flags, f"-Wl,-rpath,{mlib}", "-o", str(exe)])
    import numpy as np
    img = np.random.default_rng(0).integers(0, 256, (48, 64, 3), dtype=np.uint8)
    data = lmcodec.encode(img, 50, exif=b"II*\x00" + bytes(8))
    src = tmp_path / "x.lmc"
    src.write_bytes(data)
    text = sh([str(exe), str(src), str(tmp_path / "x.ppm")], env=env)
    assert "64x48, 3 channels" in text and "exif 12," in text
