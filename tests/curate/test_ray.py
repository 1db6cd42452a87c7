"""The Ray Data path (Ray started inside the process) gives the local path's manifest."""

import pyarrow.parquet as pq
import pytest

from genhuman.curate import curate

from .conftest import small_config


@pytest.mark.slow  # ~30 s on the 2-core machine: Ray's start and two workers importing MediaPipe
def test_ray_and_local_give_the_same_manifest(tmp_path, listing, listing_local_run):
    import ray

    on_ray = curate(str(listing), tmp_path / "ray", small_config(), use_ray=True, workers=1, progress=False,
                    report=False)
    assert not ray.is_initialized()  # started inside the run and shut down after it
    assert on_ray.workers == 1 and on_ray.processed == 2
    for name in ("manifest.parquet", "inputs.parquet"):
        a = pq.read_table(listing_local_run.out_dir / name)
        b = pq.read_table(tmp_path / "ray" / name)
        assert a.schema.equals(b.schema) and a.num_rows == b.num_rows > 0
        frame_a, frame_b = a.to_pandas(), b.to_pandas()
        assert [c for c in frame_a.columns if not frame_a[c].equals(frame_b[c])] == []  # NaN-aware, exact
    clip = pq.read_table(tmp_path / "ray" / "manifest.parquet").to_pylist()[0]["clip"]
    assert (tmp_path / "ray" / clip).stat().st_size > 0
