"""The command line never destroys a user's file, and behaves as a Unix tool: no clobbering, atomic writes,
pipes, batches, one-line errors, help with defaults. Run through the real console script in a temp folder."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
import zlib
import struct

import numpy as np
import pytest
from PIL import Image

import lmcodec
from test_api import natural

LMC = shutil.which("lmcodec")


def run(*args, cwd, stdin: bytes = None, timeout: float = 180):
    cmd = ([LMC] if LMC else [sys.executable, "-m", "lmcodec"]) + [str(a) for a in args]
    return subprocess.run(cmd, input=stdin, capture_output=True, cwd=cwd, timeout=timeout)


def md5(path) -> str:
    return hashlib.md5(open(path, "rb").read()).hexdigest()


def one_error_line(r) -> str:
    err = r.stderr.decode()
    assert r.returncode != 0, err
    assert err.startswith("lmcodec: error:") and err.count("\n") == 1, err
    assert "Traceback" not in err
    return err


def run_on_terminal(*args, cwd, timeout: float = 300):
    """Run the console script with stderr on a 100-column pseudo-terminal: (exit status, what the terminal showed)."""
    import fcntl
    import pty
    import termios

    cmd = ([LMC] if LMC else [sys.executable, "-m", "lmcodec"]) + [str(a) for a in args]
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
    p = subprocess.Popen(cmd, stderr=slave, stdout=subprocess.PIPE, cwd=cwd)
    os.close(slave)
    chunks = []
    while True:
        try:
            b = os.read(master, 4096)
        except OSError:
            break
        if not b:
            break
        chunks.append(b)
    p.wait(timeout=timeout)
    os.close(master)
    return p.returncode, b"".join(chunks).decode(errors="replace")


def no_temp_files(folder) -> bool:
    return not [p for p in os.listdir(folder) if p.endswith(".tmp")]


@pytest.fixture
def photo(tmp_path):
    p = tmp_path / "photo.png"
    Image.fromarray(natural(48, 64, 3)).save(p)
    return p


def test_decode_never_overwrites_the_original(tmp_path, photo):
    """The reported loss: encode photo.png, then decode photo.lmc, used to write the lossy decode over photo.png."""
    before = md5(photo)
    r = run("encode", photo.name, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "photo.lmc").exists()
    r = run("decode", "photo.lmc", cwd=tmp_path)
    err = one_error_line(r)
    assert "photo.png exists" in err and "-f/--force" in err
    assert md5(photo) == before
    # encoding again does not overwrite the stream either
    lmc_before = md5(tmp_path / "photo.lmc")
    one_error_line(run("encode", photo.name, "-q", "20", cwd=tmp_path))
    assert md5(tmp_path / "photo.lmc") == lmc_before
    # -f allows it; an explicit -o may overwrite (as dwebp)
    assert run("decode", "photo.lmc", "-f", cwd=tmp_path).returncode == 0
    assert md5(photo) != before and Image.open(photo).size == (64, 48)
    other = tmp_path / "other.png"
    other.write_bytes(b"old")
    assert run("decode", "photo.lmc", "-o", "other.png", cwd=tmp_path).returncode == 0
    assert Image.open(other).size == (64, 48)
    assert no_temp_files(tmp_path)


def test_never_writes_a_file_it_reads(tmp_path, photo):
    assert run("encode", photo.name, "-o", "x.lmc", cwd=tmp_path).returncode == 0
    before = md5(tmp_path / "x.lmc")
    err = one_error_line(run("encode", "x.lmc", "-o", "x.lmc", cwd=tmp_path))
    assert "never writes a file it reads" in err
    assert md5(tmp_path / "x.lmc") == before
    os.symlink(photo, tmp_path / "alias.png")
    before_photo = md5(photo)
    one_error_line(run("encode", photo.name, "-o", "alias.png", cwd=tmp_path))  # a link to the input is refused
    assert md5(photo) == before_photo


def test_failed_encode_leaves_nothing_and_keeps_existing(tmp_path, photo):
    target = tmp_path / "out.lmc"
    target.write_bytes(b"precious")
    err = one_error_line(run("encode", photo.name, "-o", "out.lmc", "--max-bytes", "10", cwd=tmp_path))
    assert "cannot fit" in err
    assert target.read_bytes() == b"precious"
    one_error_line(run("encode", photo.name, "-o", "new.lmc", "--max-bytes", "10", cwd=tmp_path))
    assert not (tmp_path / "new.lmc").exists()
    assert no_temp_files(tmp_path)


def test_interrupted_encode_keeps_existing_file(tmp_path):
    src = tmp_path / "big.png"
    Image.fromarray(natural(2000, 2000, 5)).save(src)
    target = tmp_path / "big.lmc"
    target.write_bytes(b"precious")
    cmd = ([LMC] if LMC else [sys.executable, "-m", "lmcodec"]) + ["encode", str(src), "-o", str(target), "-j", "1"]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(1.5)
    p.send_signal(signal.SIGTERM)
    p.communicate(timeout=120)
    data = target.read_bytes()
    if data != b"precious":  # it finished before the signal: then the whole stream is there
        assert lmcodec.decode(data).shape == (2000, 2000, 3)
    else:
        assert p.returncode != 0
    assert no_temp_files(tmp_path)


def test_pipes_are_byte_identical_to_files(tmp_path, photo):
    assert run("encode", photo.name, "-o", "f.lmc", "-q", "60", cwd=tmp_path).returncode == 0
    r = run("encode", "-", "-o", "-", "-q", "60", cwd=tmp_path, stdin=photo.read_bytes())
    assert r.returncode == 0, r.stderr
    assert r.stdout == (tmp_path / "f.lmc").read_bytes()
    assert b"bpp" in r.stderr  # the status line goes to stderr, never into the stream
    assert not (tmp_path / "-").exists()
    assert run("decode", "f.lmc", "-o", "f.png", cwd=tmp_path).returncode == 0
    r = run("decode", "-", "-o", "-", cwd=tmp_path, stdin=(tmp_path / "f.lmc").read_bytes())
    assert r.returncode == 0, r.stderr
    assert r.stdout == (tmp_path / "f.png").read_bytes()
    # a stream on stdin with a file output, and stdin without -o (no name to derive)
    assert run("decode", "-", "-o", "g.png", cwd=tmp_path, stdin=(tmp_path / "f.lmc").read_bytes()).returncode == 0
    assert (tmp_path / "g.png").read_bytes() == (tmp_path / "f.png").read_bytes()
    one_error_line(run("encode", "-", cwd=tmp_path, stdin=photo.read_bytes()))
    # -o /dev/stdout > file: the stream is intact because status lines go to stderr
    r = subprocess.run(f"{'lmcodec' if LMC else sys.executable + ' -m lmcodec'} encode {photo.name} -q 60 "
                       f"-o /dev/stdout > piped.lmc", shell=True, cwd=tmp_path, capture_output=True)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "piped.lmc").read_bytes() == (tmp_path / "f.lmc").read_bytes()


@pytest.mark.parametrize("args,needle", [
    (["decode", "x.lmc", "-o", "out.xyz"], "unknown output extension"),
    (["decode", "x.lmc", "-o", "noext"], "extension"),
    (["decode", "missing.lmc"], "missing.lmc"),
    (["encode", "missing.png"], "missing.png"),
    (["decode", "garbage.lmc", "-o", "g.png"], ""),
    (["encode", "garbage.lmc", "-o", "g.lmc"], "not a valid LMC file"),
    (["decode", "x.lmc", "-o", "nodir/sub/x.png"], ""),
    (["encode", "bomb.png", "-o", "b.lmc"], "decompression bomb"),
    (["encode", "photo.png", "-o", "l.lmc", "--lossless", "--max-error", "2"], "not both"),
    (["encode", "photo.png", "-o", "l.lmc", "--lossless", "--max-bytes", "900"], "max-bytes"),
    (["decode", "x.lmc", "--format", "nope"], "unknown output extension"),
    (["info", "garbage.lmc"], ""),
])
def test_every_error_is_one_line(tmp_path, photo, args, needle):
    assert run("encode", photo.name, "-o", "x.lmc", cwd=tmp_path).returncode == 0
    (tmp_path / "garbage.lmc").write_bytes(b"\x89LMC\r\n\x1a\n" + b"\x01" * 40)
    # a PNG whose header claims 30000 x 30000 (Pillow's bomb guard must stop it before any pixel work)
    ihdr = struct.pack(">IIBBBBB", 30000, 30000, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    png = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(ihdr)) + chunk + struct.pack(">I", zlib.crc32(chunk))
    (tmp_path / "bomb.png").write_bytes(png + struct.pack(">I", 0) + b"IEND" + struct.pack(">I", zlib.crc32(b"IEND")))
    err = one_error_line(run(*args, cwd=tmp_path))
    assert needle.lower() in err.lower()
    assert not (tmp_path / "l.lmc").exists() and no_temp_files(tmp_path)


def test_debug_shows_the_traceback(tmp_path):
    (tmp_path / "garbage.lmc").write_bytes(b"nonsense")
    r = run("--debug", "decode", "garbage.lmc", "-o", "x.png", cwd=tmp_path)
    assert r.returncode != 0 and b"Traceback" in r.stderr


def test_batch_into_a_folder_with_jobs(tmp_path):
    names = []
    for k, ch in enumerate((3, 1, 4)):
        p = tmp_path / f"img{k}.png"
        Image.fromarray(natural(40 + 8 * k, 56, k, channels=ch if ch != 4 else 3) if ch != 4 else
                        np.dstack([natural(56, 56, k), np.full((56, 56), 200, np.uint8)])).save(p)
        names.append(p.name)
    r = run("encode", *names, "-o", "out/", "--jobs", "2", "-q", "50", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout == b""
    summary = r.stderr.decode().strip().splitlines()[-1]
    assert "encoded 3 of 3 files" in summary and "bpp" in summary
    for n in names:
        out = tmp_path / "out" / n.replace(".png", ".lmc")
        ref = lmcodec.encode(Image.open(tmp_path / n), 50)
        assert out.read_bytes() == ref
    # decode the folder's streams into another folder
    streams = sorted(str(p.relative_to(tmp_path)) for p in (tmp_path / "out").glob("*.lmc"))
    r = run("decode", *streams, "-o", "back/", "--jobs", "2", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in (tmp_path / "back").iterdir()) == ["img0.png", "img1.png", "img2.png"]
    # a second run refuses to clobber the derived names in the folder, and changes nothing
    before = md5(tmp_path / "out" / "img0.lmc")
    err = one_error_line(run("encode", *names, "-o", "out/", cwd=tmp_path))
    assert "exists" in err and md5(tmp_path / "out" / "img0.lmc") == before
    # one bad file in a batch: the others are still coded, the failure is one line, the exit status 1
    (tmp_path / "bad.png").write_bytes(b"not an image")
    r = run("encode", names[0], "bad.png", "-o", "out2/", "--jobs", "2", "--quiet", cwd=tmp_path)
    assert r.returncode == 1
    assert r.stderr.decode().count("lmcodec: error:") == 1 and "bad.png" in r.stderr.decode()
    assert (tmp_path / "out2" / "img0.lmc").exists() and not (tmp_path / "out2" / "bad.lmc").exists()


def test_quiet_and_verbose(tmp_path, photo):
    r = run("encode", photo.name, "-o", "q.lmc", "--quiet", cwd=tmp_path)
    assert r.returncode == 0 and r.stderr == b"" and r.stdout == b""
    r = run("encode", photo.name, "-o", "v.lmc", "-v", cwd=tmp_path)
    assert b"PSNR" in r.stderr
    r = run("decode", "v.lmc", "-o", "v.png", "-v", cwd=tmp_path)
    line = r.stderr.decode()
    assert r.returncode == 0 and "bytes" in line and "bpp" in line and "quality 75" in line and "model" in line


def test_help_shows_defaults_and_ranges(tmp_path):
    out = run("encode", "--help", cwd=tmp_path).stdout.decode()
    assert "1..100" in out and "default 75" in out and "examples:" in out
    assert "--jobs" in out and "--force" in out and "--quiet" in out and "0..1024" in out
    assert "default png" in run("decode", "--help", cwd=tmp_path).stdout.decode()


def _sixteen_bit(tmp_path):
    ref8 = natural(40, 48, 3, channels=1)
    a16 = ref8.astype(np.uint16) * 257 + 100  # every value rounds back to ref8
    p = tmp_path / "deep.png"
    Image.fromarray(a16).save(p)
    return p, ref8, a16


def test_sixteen_bit_is_scaled_not_clipped_in_every_path(tmp_path):
    p, ref8, a16 = _sixteen_bit(tmp_path)
    assert Image.open(p).mode in ("I;16", "I")
    assert run("encode", p.name, "-o", "cli.lmc", "-q", "90", "-v", cwd=tmp_path).returncode == 0
    cli = (tmp_path / "cli.lmc").read_bytes()
    api = lmcodec.encode(Image.open(p), 90)
    arr = lmcodec.encode(a16, 90)
    Image.open(p).save(tmp_path / "plugin.lmc", quality=90)
    plugin = (tmp_path / "plugin.lmc").read_bytes()
    ref = lmcodec.encode(ref8, 90)
    assert cli == api == arr == plugin == ref
    back = lmcodec.decode(cli)
    mse = np.mean((back.astype(float) - ref8) ** 2)
    assert 10 * np.log10(255 ** 2 / mse) > 28  # against the 8-bit picture the user sees


def test_float_images(tmp_path):
    ref8 = natural(32, 40, 4, channels=1)
    for f in (ref8 / 255.0, ref8.astype(np.float32)):
        assert lmcodec.encode(f, 80) == lmcodec.encode(ref8, 80)
        assert lmcodec.encode(Image.fromarray(f.astype(np.float32), "F"), 80) == lmcodec.encode(ref8, 80)
    for bad in (np.full((8, 8), 256.5), np.full((8, 8), -0.5), np.full((8, 8), np.nan)):
        with pytest.raises(lmcodec.LmcError, match="never clips|NaN"):
            lmcodec.encode(bad)
        with pytest.raises(lmcodec.LmcError):
            Image.fromarray(bad.astype(np.float32), "F").save(tmp_path / "f.lmc")
        assert not (tmp_path / "f.lmc").exists() or (tmp_path / "f.lmc").stat().st_size == 0
    with pytest.raises(lmcodec.LmcError, match="mode I"):
        lmcodec.encode(Image.fromarray(np.full((8, 8), 70000, np.int32), "I"))
    with pytest.raises(lmcodec.LmcError, match="int64"):
        lmcodec.encode(np.zeros((8, 8), np.int64))


def test_xmp_icc_exif_survive_decode_to_png(tmp_path, photo):
    im = Image.open(photo)
    exif = Image.Exif()
    exif[0x010E] = "lmcodec test"
    xmp = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF/></x:xmpmeta>'
    icc = b"\0\0\0\x10fake icc profile"
    im.save(tmp_path / "m.lmc", exif=exif, xmp=xmp, icc_profile=icc)
    assert run("decode", "m.lmc", "-o", "m.png", cwd=tmp_path).returncode == 0
    back = Image.open(tmp_path / "m.png")
    assert back.info["icc_profile"] == icc
    assert back.getexif()[0x010E] == "lmcodec test"
    got = back.info["xmp"]
    assert (got.encode() if isinstance(got, str) else got) == xmp
    # and back into .lmc from the PNG: all three again
    assert run("encode", "m.png", "-o", "m2.lmc", cwd=tmp_path).returncode == 0
    meta = lmcodec.info((tmp_path / "m2.lmc").read_bytes()).metadata
    assert meta["icc_profile"] == icc and meta["xmp"] == xmp and b"lmcodec test" in meta["exif"]


def test_demo_compares_at_equal_size(tmp_path):
    r = run("demo", "-o", "demo", cwd=tmp_path, timeout=300)
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode()
    assert "lmcodec" in out and "JPEG" in out
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.split() and
            line.split()[0] in ("lmcodec", "JPEG", "WebP", "AVIF")}
    lmc_bytes = int(rows["lmcodec"][2])
    for name, row in rows.items():
        assert int(row[2]) <= lmc_bytes  # each other codec fits in lmcodec's size
    pic = Image.open(tmp_path / "demo" / "comparison.png")
    assert pic.size[0] > 400 and pic.size[1] > 300
    assert (tmp_path / "demo" / "photo.lmc").exists()


def test_write_atomic_unit(tmp_path):
    from lmcodec._files import OutputExists, write_atomic

    target = tmp_path / "t.bin"
    target.write_bytes(b"old")
    os.chmod(target, 0o640)

    def failing(f):
        f.write(b"half")
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        write_atomic(target, failing, overwrite=True)
    assert target.read_bytes() == b"old" and no_temp_files(tmp_path)
    with pytest.raises(OutputExists):
        write_atomic(target, lambda f: f.write(b"new"), overwrite=False)
    write_atomic(target, lambda f: f.write(b"new"), overwrite=True)
    assert target.read_bytes() == b"new" and (target.stat().st_mode & 0o777) == 0o640  # keeps the file's mode
    fresh = tmp_path / "fresh.bin"
    write_atomic(fresh, lambda f: f.write(b"x"), overwrite=False)
    assert fresh.stat().st_mode & 0o777 == 0o666 & ~_umask()  # not mkstemp's 0600
    link = tmp_path / "link.bin"
    os.symlink(target, link)
    write_atomic(link, lambda f: f.write(b"via link"), overwrite=True)
    assert os.path.islink(link) and target.read_bytes() == b"via link"  # the link stays, its file is replaced
    write_atomic("/dev/null", lambda f: f.write(b"gone"), overwrite=True)  # a device is written, never replaced
    assert os.path.exists("/dev/null") and not os.path.isfile("/dev/null")


def _umask() -> int:
    m = os.umask(0)
    os.umask(m)
    return m


def test_progress_bar_on_a_terminal_only(tmp_path, photo):
    shutil.copy(photo, tmp_path / "b.png")
    rc, tty = run_on_terminal("encode", "photo.png", "b.png", "-o", "out/", "--jobs", "1", cwd=tmp_path)
    assert rc == 0, tty
    assert "/2 [" in tty and "img" in tty and "encoded 2 of 2 files" in tty  # tqdm's bar, then the summary
    r = run("encode", "photo.png", "b.png", "-o", "out2/", "--jobs", "1", cwd=tmp_path)  # not a terminal: no bar
    assert "/2 [" not in r.stderr.decode() and "encoded 2 of 2 files" in r.stderr.decode()


@pytest.fixture(scope="module")
def big_png(tmp_path_factory):
    p = tmp_path_factory.mktemp("big") / "big.png"
    Image.fromarray(natural(2400, 2400, 11)).save(p, compress_level=1)
    return p


def test_single_big_image_shows_strip_progress_on_a_terminal(tmp_path, big_png):
    rc, tty = run_on_terminal("encode", big_png, "-o", "big.lmc", "-j", "1", cwd=tmp_path)
    assert rc == 0, tty
    assert "strip" in tty and "encode big.png" in tty  # the per-strip bar (the encode takes well over a second)
    assert lmcodec.info((tmp_path / "big.lmc").read_bytes()).width == 2400


def test_ctrl_c_cancels_a_long_encode_cleanly(tmp_path, big_png):
    target = tmp_path / "big.lmc"
    target.write_bytes(b"precious")
    cmd = ([LMC] if LMC else [sys.executable, "-m", "lmcodec"]) + ["encode", str(big_png), "-o", str(target), "-j", "1"]
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(2.0)
    t0 = time.time()
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=120)
    if p.returncode == 130:  # cancelled at the next strip, not at the end of the encode
        assert err.decode().strip() == "lmcodec: error: interrupted"
        assert time.time() - t0 < 3.0
        assert target.read_bytes() == b"precious"
    else:  # it had finished: the whole stream is there
        assert p.returncode == 0 and lmcodec.info(target.read_bytes()).width == 2400
    assert no_temp_files(tmp_path)


def test_api_progress_and_cancel():
    img = natural(600, 200, 2)
    seen = []
    data = lmcodec.encode(img, 50, progress=lambda d, t: seen.append((d, t)))
    assert seen[0][0] == 0 and seen[-1][0] == seen[-1][1] >= 1
    assert data == lmcodec.encode(img, 50)  # reporting changes nothing
    seen = []
    assert np.array_equal(lmcodec.decode(data, progress=lambda d, t: seen.append((d, t))), lmcodec.decode(data))
    assert seen[-1][0] == seen[-1][1]
    with pytest.raises(lmcodec.LmcError, match="cancelled"):
        lmcodec.decode(data, progress=lambda d, t: True)
    with pytest.raises(ZeroDivisionError):
        lmcodec.encode(img, 50, progress=lambda d, t: 1 / 0)
    with pytest.raises(lmcodec.LmcError):
        lmcodec.encode(img, 50, progress="no")
