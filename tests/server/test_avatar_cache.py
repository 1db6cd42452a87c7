"""The server's avatar cache: the same portrait sent for several jobs is prepared once."""

from __future__ import annotations

import pytest

from genhuman.request import AnimateRequest
from genhuman.server.avatars import LRU, avatar_key

from .conftest import wait_for
from .test_api import make_client, submit


def run_jobs(client, image, audio, count: int, **fields) -> list[dict]:
    jobs = []
    for _ in range(count):  # one after another: each job sees the previous ones' avatars
        r = submit(client, image, audio, **fields)
        assert r.status_code == 202, r.text
        done = wait_for(client, r.json()["id"])
        assert done["status"] == "succeeded", done
        jobs.append(done)
    return jobs


def test_same_portrait_is_prepared_once(tmp_path, fake_engine, small_portrait, short_speech, monkeypatch):
    monkeypatch.setenv("GENHUMAN_FAKE_PREPARE", "0.3")  # stands in for face detection + encoding
    with make_client(tmp_path) as client:
        jobs = run_jobs(client, small_portrait, short_speech, 3)
        assert fake_engine.prepares == 1  # jobs 2 and 3 did no prepare_avatar
        # the first was prepared while its upload was checked (its face check), then reused
        assert [j["result"]["avatar_cache"] for j in jobs] == ["admission", "hit", "hit"]
        assert all(j["timings"]["prepare_avatar"] < 0.2 for j in jobs)  # no worker prepared one
        # options the avatar does not depend on share it; its geometry options do not
        run_jobs(client, small_portrait, short_speech, 1, fps="12", seed="5")
        assert fake_engine.prepares == 1
        run_jobs(client, small_portrait, short_speech, 1, max_size="64")
        assert fake_engine.prepares == 2
        stats = client.get("/healthz").json()["avatar_cache"]
        assert stats == {"size": 2, "capacity": 16, "hits": 3, "misses": 2, "evictions": 0}


def test_cache_is_keyed_by_content_not_by_upload(tmp_path, fake_engine, small_portrait, short_speech):
    from PIL import Image

    copy = tmp_path / "same-pixels.bmp"  # another file (name, format), the same decoded portrait
    Image.open(small_portrait).save(copy)
    other = tmp_path / "other.png"
    Image.open(small_portrait).transpose(Image.FLIP_LEFT_RIGHT).save(other)
    with make_client(tmp_path) as client:
        jobs = run_jobs(client, small_portrait, short_speech, 1) + run_jobs(client, copy, short_speech, 1) \
            + run_jobs(client, other, short_speech, 1)
        assert [j["result"]["avatar_cache"] for j in jobs] == ["admission", "hit", "admission"]
        assert fake_engine.prepares == 2


def test_cache_off_prepares_every_job(tmp_path, fake_engine, small_portrait, short_speech):
    with make_client(tmp_path, avatar_cache=0) as client:
        jobs = run_jobs(client, small_portrait, short_speech, 3)
        assert fake_engine.prepares == 3  # at each admission (the face check), used by the worker
        assert all(j["result"]["avatar_cache"] == "admission" for j in jobs)
        assert client.get("/healthz").json()["avatar_cache"]["capacity"] == 0


def test_cache_is_bounded_lru(tmp_path, fake_engine, small_portrait, short_speech):
    with make_client(tmp_path, avatar_cache=2) as client:
        for size in ("64", "72", "80"):  # three avatars through a cache of two
            run_jobs(client, small_portrait, short_speech, 1, max_size=size)
        assert run_jobs(client, small_portrait, short_speech, 1, max_size="80")[0]["result"]["avatar_cache"] == "hit"
        assert run_jobs(client, small_portrait, short_speech, 1, max_size="64")[0]["result"]["avatar_cache"] == "miss"
        assert client.get("/healthz").json()["avatar_cache"]["evictions"] == 2
        assert fake_engine.prepares == 4


def test_lru_and_key():
    cache: LRU[str] = LRU(2)
    cache.put("a", "1")
    cache.put("b", "2")
    assert cache.get("a") == "1"  # a is now the most recent
    cache.put("c", "3")
    assert cache.get("b") is None and cache.get("a") == "1" and cache.get("c") == "3"
    assert cache.stats() == {"size": 2, "capacity": 2, "hits": 3, "misses": 1, "evictions": 1}

    base = avatar_key("lite", "d" * 64, AnimateRequest(), accelerated=False)
    assert avatar_key("lite", "d" * 64, AnimateRequest(fps=12, seed=3, steps=5), accelerated=False) == base
    assert avatar_key("lite", "d" * 64, AnimateRequest(width=256), accelerated=False) == base  # lite: unused
    assert avatar_key("lite", "d" * 64, AnimateRequest(face_index=1), accelerated=False) != base
    assert avatar_key("lite", "d" * 64, AnimateRequest(max_size=256), accelerated=False) != base
    assert avatar_key("lite", "e" * 64, AnimateRequest(), accelerated=False) != base
    v1 = avatar_key("echomimic", "d" * 64, AnimateRequest(width=256, height=256), accelerated=False)
    assert v1 != avatar_key("echomimic", "d" * 64, AnimateRequest(width=256, height=256, paste_back=True),
                            accelerated=False)
    assert v1 != avatar_key("echomimic", "d" * 64, AnimateRequest(width=256, height=256), accelerated=True)
    assert v1 != avatar_key("echomimic", "d" * 64, AnimateRequest(width=320, height=320), accelerated=False)
    assert avatar_key("echomimic_v2", "d" * 64, AnimateRequest(paste_back=True), accelerated=False) == \
        avatar_key("echomimic_v2", "d" * 64, AnimateRequest(), accelerated=False)  # V2 has no paste-back


def test_lite_engine_jobs_reuse_the_avatar(tmp_path, small_portrait, short_speech):
    from genhuman.engines.lite import LiteEngine

    if not hasattr(LiteEngine, "prepare_avatar"):
        pytest.skip("the lite engine has no prepare_avatar in this checkout")
    with make_client(tmp_path, default_engine="lite") as client:
        jobs = run_jobs(client, small_portrait, short_speech, 3)
        assert [j["result"]["avatar_cache"] for j in jobs] == ["admission", "hit", "hit"]
        assert all(j["result"]["frames"] == jobs[0]["result"]["frames"] > 0 for j in jobs)
        videos = [client.get(j["video_url"]).content for j in jobs]
        assert all(v[4:8] == b"ftyp" for v in videos)
        assert videos[1] == videos[2] == videos[0]  # a reused avatar renders the same video
        stats = client.get("/healthz").json()["avatar_cache"]
        assert (stats["hits"], stats["misses"]) == (2, 1)
    with make_client(tmp_path / "off", default_engine="lite", avatar_cache=0) as client:
        job = run_jobs(client, small_portrait, short_speech, 1)[0]
        assert client.get(job["video_url"]).content == videos[0]  # the same as without the cache


def test_upload_face_check_is_remembered(tmp_path, fake_engine, small_portrait, short_speech, monkeypatch):
    import genhuman.face
    from PIL import Image

    real, calls = genhuman.face.face_landmarks, []

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(genhuman.face, "face_landmarks", counting)
    copy = tmp_path / "same-pixels.bmp"
    Image.open(small_portrait).save(copy)
    with make_client(tmp_path, workers=False) as client:
        assert [submit(client, p, short_speech).status_code for p in (small_portrait, small_portrait, copy)] == [202] * 3
        assert len(calls) == 1  # the same bytes, then the same pixels: detected once
        assert submit(client, small_portrait, short_speech, face_index="1").status_code == 400  # one face only
        assert len(calls) == 2
    calls.clear()
    with make_client(tmp_path / "off", workers=False, avatar_cache=0) as client:
        assert [submit(client, small_portrait, short_speech).status_code for _ in range(2)] == [202] * 2
        assert len(calls) == 2


def test_disk_cache_survives_a_restart_and_stale_avatars_are_prepared_again(tmp_path, fake_engine, small_portrait,
                                                                             short_speech):
    import json

    with make_client(tmp_path, avatar_cache_disk=4) as client:
        assert run_jobs(client, small_portrait, short_speech, 1)[0]["result"]["avatar_cache"] == "admission"
    saved = [p for p in (tmp_path / "data" / "avatars").iterdir()]
    assert len(saved) == 1 and (saved[0] / "avatar.json").is_file()
    with make_client(tmp_path, avatar_cache_disk=4) as client:  # a restarted server
        jobs = run_jobs(client, small_portrait, short_speech, 2)
        assert [j["result"]["avatar_cache"] for j in jobs] == ["disk", "hit"]
        assert client.get("/healthz").json()["avatar_cache_disk"]["hits"] == 1
    assert fake_engine.prepares == 1

    meta = json.loads((saved[0] / "avatar.json").read_text())
    (saved[0] / "avatar.json").write_text(json.dumps({**meta, "weights_id": "other"}))  # made with other weights
    with make_client(tmp_path, avatar_cache_disk=4) as client:
        job = run_jobs(client, small_portrait, short_speech, 1)[0]
        assert job["result"]["avatar_cache"] == "miss"  # refused by the engine, prepared again
    assert fake_engine.prepares == 2
    assert json.loads((saved[0] / "avatar.json").read_text())["weights_id"] == ""

    (saved[0] / "avatar.safetensors").write_bytes(b"not a tensor file")  # corrupt: a miss, replaced
    with make_client(tmp_path, avatar_cache_disk=1) as client:
        assert run_jobs(client, small_portrait, short_speech, 1)[0]["result"]["avatar_cache"] == "miss"
        run_jobs(client, small_portrait, short_speech, 1, max_size="64")  # a second avatar, capacity 1
        assert client.get("/healthz").json()["avatar_cache_disk"]["evictions"] == 1
    assert len(list((tmp_path / "data" / "avatars").iterdir())) == 1
    assert fake_engine.prepares == 4


def test_lite_avatar_from_disk_renders_the_same_video(tmp_path, small_portrait, short_speech):
    from genhuman.engines.lite import LiteEngine

    if not hasattr(LiteEngine, "prepare_avatar"):
        pytest.skip("the lite engine has no prepare_avatar in this checkout")
    with make_client(tmp_path, default_engine="lite", avatar_cache_disk=4) as client:
        first = run_jobs(client, small_portrait, short_speech, 1)[0]
        video = client.get(first["video_url"]).content
    with make_client(tmp_path, default_engine="lite", avatar_cache_disk=4) as client:
        again = run_jobs(client, small_portrait, short_speech, 1)[0]
        assert again["result"]["avatar_cache"] == "disk"
        assert client.get(again["video_url"]).content == video


def test_deleting_a_job_drops_its_portraits_avatars(tmp_path, fake_engine, small_portrait, short_speech):
    from PIL import Image

    other = tmp_path / "other.png"
    Image.open(small_portrait).transpose(Image.FLIP_LEFT_RIGHT).save(other)
    with make_client(tmp_path, avatar_cache_disk=8) as client:
        jobs = run_jobs(client, small_portrait, short_speech, 1) + run_jobs(client, small_portrait, short_speech, 1,
                                                                            max_size="64")
        keep = run_jobs(client, other, short_speech, 1)[0]
        assert client.get("/healthz").json()["avatar_cache"]["size"] == 3
        assert client.delete(f"/v1/jobs/{jobs[0]['id']}").status_code == 200
        health = client.get("/healthz").json()
        assert health["avatar_cache"]["size"] == health["avatar_cache_disk"]["size"] == 1  # both of its avatars
        assert client.delete(f"/v1/jobs/{keep['id']}").status_code == 200
        assert client.get("/healthz").json()["avatar_cache"]["size"] == 0
    assert list((tmp_path / "data" / "avatars").iterdir()) == []
