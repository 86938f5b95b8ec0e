"""Batch transcoding on a real Dask cluster (distributed.LocalCluster, 2 worker processes)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import lmcodec
from test_api import natural

distributed = pytest.importorskip("distributed")
pytest.importorskip("dask.bag")


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=40) as cluster, distributed.Client(cluster) as c:
        yield c


def test_encode_decode_on_a_local_cluster_equals_serial(tmp_path, client):
    import lmcodec.dask as ld

    src = tmp_path / "in"
    src.mkdir()
    paths = []
    for k in range(5):
        p = src / f"img{k}.png"
        Image.fromarray(natural(40 + 4 * k, 48, k)).save(p)
        paths.append(str(p))
    (src / "bad.png").write_bytes(b"not an image")
    res = ld.encode_paths(paths + [str(src / "bad.png")], str(tmp_path / "lmc"), quality=60)
    assert len(res) == 6
    failed = [r for r in res if "error" in r]
    assert len(failed) == 1 and failed[0]["input"].endswith("bad.png")
    workers = {r["output"] for r in res if "error" not in r}
    assert len(workers) == 5
    for p in paths:
        out = tmp_path / "lmc" / (p.rsplit("/", 1)[1][:-4] + ".lmc")
        assert out.read_bytes() == lmcodec.encode(np.asarray(Image.open(p)), 60)  # same bytes as serial
    # a second run never overwrites; overwrite=True does
    again = ld.encode_paths(paths[:1], str(tmp_path / "lmc"), quality=10)
    assert "exists" in again[0]["error"]
    assert ld.encode_paths(paths[:1], str(tmp_path / "lmc"), quality=10, overwrite=True)[0]["bytes_out"] > 0
    streams = sorted(str(p) for p in (tmp_path / "lmc").glob("*.lmc"))
    back = ld.decode_paths(streams, str(tmp_path / "png"))
    assert all("error" not in r for r in back)
    for s in streams:
        name = s.rsplit("/", 1)[1][:-4] + ".png"
        assert np.array_equal(np.asarray(Image.open(tmp_path / "png" / name)),
                              lmcodec.decode(open(s, "rb").read()))


def test_name_collisions_and_bad_arguments_fail_before_work(tmp_path):
    import lmcodec.dask as ld

    with pytest.raises(lmcodec.LmcError, match="both be written"):
        ld.encode_paths(["a/x.png", "b/x.jpg"], str(tmp_path / "o"))
    with pytest.raises(lmcodec.LmcError):
        ld.encode_paths(["a.png"], str(tmp_path / "o"), quality=0)
    with pytest.raises(lmcodec.LmcError, match="extension"):
        ld.decode_paths(["a.lmc"], str(tmp_path / "o"), format="nope")
