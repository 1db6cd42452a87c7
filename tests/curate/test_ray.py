"""The Ray Data path (Ray started inside the process) gives the local path's manifest."""

import pyarrow.parquet as pq
import pytest

from genhuman.curate import curate, synthetic

from .conftest import SHOT_FRAMES, small_config


@pytest.fixture(scope="module")
def small_video(tmp_path_factory, base):
    path = tmp_path_factory.mktemp("ray_in") / "two.mp4"
    synthetic.build_video(path, base, ["shifted", "noface"], SHOT_FRAMES, seed=5)
    return path


def test_ray_and_local_give_the_same_manifest(tmp_path, small_video):
    import ray

    local = curate(str(small_video), tmp_path / "local", small_config(), use_ray=False, progress=False, report=False)
    on_ray = curate(str(small_video), tmp_path / "ray", small_config(), use_ray=True, workers=1, progress=False,
                    report=False)
    assert not ray.is_initialized()  # started inside the run and shut down after it
    assert on_ray.workers == 1 and on_ray.processed == 2
    a = pq.read_table(tmp_path / "local" / "manifest.parquet")
    b = pq.read_table(tmp_path / "ray" / "manifest.parquet")
    assert a.schema.equals(b.schema)
    frame_a, frame_b = a.to_pandas(), b.to_pandas()
    assert [c for c in frame_a.columns if not frame_a[c].equals(frame_b[c])] == []  # NaN-aware, exact
    assert [r["kept"] for r in a.to_pylist()] == [True, False]
    clip = a.to_pylist()[0]["clip"]
    assert (tmp_path / "ray" / clip).stat().st_size > 0
