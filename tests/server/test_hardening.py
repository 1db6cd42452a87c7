"""Issue 9 on the server: bounded cost, admission before expensive work, ownership,
browser-facing headers, and faults (full disk, failing database, stray files)."""

from __future__ import annotations

import base64
import errno
import hashlib
import io
import re
import threading
import time

import pytest
from PIL import Image

from genhuman.server import admission
from genhuman.server.admission import Busy, ValidationPool
from genhuman.server.ratelimit import RateLimiter

from .conftest import wait_for
from .test_api import make_client

ALICE, BOB, ADMIN = "alice-token", "bob-token", "admin-token"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def post(client, image, audio, headers=None, cookies=None, **fields):
    files = {"image": ("face.png", image.read_bytes()), "audio": ("speech.wav", audio.read_bytes())}
    return client.post("/v1/jobs", files=files, data=fields, headers=headers or {}, cookies=cookies)


def png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 180, 160)).save(buffer, format="PNG")
    return buffer.getvalue()


# -- ownership ----------------------------------------------------------------------------

def test_jobs_are_seen_only_by_their_owner_and_the_admin(tmp_path, fake_engine, small_portrait, short_speech):
    with make_client(tmp_path, token=ALICE, tokens=[BOB], admin_token=ADMIN) as client:
        job = client.post("/v1/jobs", headers=bearer(ALICE), data={"text": "my secret words"},
                          files={"image": ("f.png", small_portrait.read_bytes())}).json()
        deadline = time.monotonic() + 60
        while client.get(f"/v1/jobs/{job['id']}", headers=bearer(ALICE)).json()["status"] != "succeeded":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        mine = client.get(f"/v1/jobs/{job['id']}", headers=bearer(ALICE)).json()
        assert mine["text"] == "my secret words"
        assert client.get("/v1/jobs", headers=bearer(BOB)).json() == {"jobs": []}
        missing = {"error": f"no job with id {job['id']!r}"}
        for method, path in [("GET", ""), ("GET", "/video"), ("POST", "/cancel"), ("DELETE", "")]:
            r = client.request(method, f"/v1/jobs/{job['id']}{path}", headers=bearer(BOB))
            assert (r.status_code, r.json()) == (404, missing), (method, path)
        # the same token from another browser session is another owner too
        r = client.get("/v1/jobs", headers=bearer(ALICE), cookies={"genhuman_session": "f" * 32})
        assert r.json() == {"jobs": []}
        seen = client.get("/v1/jobs", headers=bearer(ADMIN)).json()["jobs"]
        assert [j["id"] for j in seen] == [job["id"]] and seen[0]["text"] is None  # not the transcript
        assert client.get(f"/v1/jobs/{job['id']}/video", headers=bearer(ADMIN)).status_code == 200
        assert client.delete(f"/v1/jobs/{job['id']}", headers=bearer(ADMIN)).json() == {"deleted": job["id"]}


def test_the_page_gives_each_browser_its_own_session(tmp_path, fake_engine, small_portrait, short_speech):
    with make_client(tmp_path, workers=False) as client:
        page = client.get("/")
        cookie = page.headers["set-cookie"]
        assert re.match(r"genhuman_session=[0-9a-f]{32};", cookie), cookie
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie
        session = page.cookies["genhuman_session"]
        client.cookies.clear()
        job = post(client, small_portrait, short_speech, cookies={"genhuman_session": session}).json()
        assert client.get("/v1/jobs").json() == {"jobs": []}  # a script without the cookie: another owner
        assert post(client, small_portrait, short_speech).status_code == 202
        listed = client.get("/v1/jobs", cookies={"genhuman_session": session}).json()["jobs"]
        assert [j["id"] for j in listed] == [job["id"]]
        assert "set-cookie" not in client.get("/", cookies={"genhuman_session": session}).headers


def test_an_old_database_gets_the_owner_column(tmp_path, fake_engine):
    import sqlite3

    data = tmp_path / "data"
    data.mkdir()
    db = sqlite3.connect(data / "jobs.sqlite3")
    db.execute("CREATE TABLE jobs (id VARCHAR(32) PRIMARY KEY, status VARCHAR(16), engine VARCHAR(64), "
               "options JSON, text TEXT, image_file VARCHAR(64), audio_file VARCHAR(64), output_file VARCHAR(64), "
               "progress FLOAT, message VARCHAR(200), error TEXT, attempts INTEGER, cancel_requested BOOLEAN, "
               "worker VARCHAR(64), timings JSON, result JSON, created_at DATETIME, started_at DATETIME, "
               "finished_at DATETIME)")
    db.execute("INSERT INTO jobs VALUES ('" + "a" * 32 + "', 'failed', 'lite', '{}', 'old words', 'x.png', "
               "'x.wav', NULL, 0, 'failed', 'no face', 1, 0, NULL, '{}', '{}', '2026-01-01 00:00:00', NULL, "
               "'2026-01-01 00:00:01')")
    db.commit()
    db.close()
    with make_client(tmp_path, workers=False, admin_token=ADMIN) as client:
        assert client.get("/v1/jobs", headers=bearer(ADMIN)).json()["jobs"][0]["id"] == "a" * 32
    with make_client(tmp_path, workers=False) as client:  # without the admin token nobody owns it
        assert client.get("/v1/jobs").json() == {"jobs": []}
    columns = [row[1] for row in sqlite3.connect(data / "jobs.sqlite3").execute("PRAGMA table_info(jobs)")]
    assert "owner" in columns


# -- bounded cost -------------------------------------------------------------------------

def test_output_is_capped_unless_the_request_asks_smaller(tmp_path, fake_engine, small_portrait, short_speech):
    with make_client(tmp_path, workers=False, max_output_size=512) as client:
        assert post(client, small_portrait, short_speech).json()["options"] == {"max_size": 512}
        assert post(client, small_portrait, short_speech, max_size="256").json()["options"] == {"max_size": 256}
        r = post(client, small_portrait, short_speech, max_size="2000")
        assert (r.status_code, r.json()) == (400, {"error": "max size must be at most 512 on this server, got 2000"})


def test_a_huge_image_is_refused_from_its_header_without_decoding(tmp_path, fake_engine, short_speech,
                                                                   monkeypatch):
    import genhuman.media

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded an image the header already refused")

    monkeypatch.setattr(genhuman.media, "load_image", no_decoding)
    big = png(5000, 4000)  # 20 Mpx in about 60 KB
    with make_client(tmp_path, workers=False) as client:
        r = client.post("/v1/jobs", files={"image": ("big.png", big), "audio": ("s.wav", short_speech.read_bytes())})
    assert (r.status_code, r.json()) == (400, {
        "error": "the uploaded image is too large (5000x4000); the limit is 16,000,000 pixels"})
    assert list((tmp_path / "data" / "uploads").iterdir()) == []


def test_long_audio_is_refused_from_its_header_before_any_decoding(tmp_path, fake_engine, small_portrait,
                                                                     short_speech, monkeypatch):
    from genhuman.media import save_wav

    long_wave = tmp_path / "long.wav"
    save_wav(long_wave, __import__("numpy").zeros(16000 * 3, "float32"))
    monkeypatch.setattr(admission, "check_media", lambda *a, **k: pytest.fail("the pool ran"))
    with make_client(tmp_path, workers=False, max_audio_seconds=1) as client:
        r = post(client, small_portrait, long_wave)
    assert (r.status_code, r.json()) == (400, {"error": "the uploaded audio is too long (3 s); the limit is 1 s"})


def test_rate_limit_per_client(tmp_path, fake_engine, small_portrait, short_speech):
    with make_client(tmp_path, workers=False, rate_limit=6, rate_burst=2, token=ALICE, tokens=[BOB]) as client:
        codes = [post(client, small_portrait, short_speech, headers=bearer(ALICE)).status_code for _ in range(3)]
        assert codes == [202, 202, 429]
        r = post(client, small_portrait, short_speech, headers=bearer(ALICE))
        assert r.json() == {"error": "too many jobs from this client; retry in 10 s"}
        assert r.headers["retry-after"] == "10" and r.headers["connection"] == "close"
        assert post(client, small_portrait, short_speech, headers=bearer(BOB)).status_code == 202  # another client


def test_rate_limiter_refills_at_its_rate():
    now = [0.0]
    limiter = RateLimiter(per_minute=30, burst=2, clock=lambda: now[0])
    assert [limiter.take("a"), limiter.take("a"), limiter.take("a")] == [None, None, 2]
    now[0] = 2.0  # one token back after 60 / 30 s
    assert (limiter.take("a"), limiter.take("a")) == (None, 2)
    assert limiter.take("b") is None
    assert RateLimiter(per_minute=0, burst=1).take("a") is None  # 0 = off


def test_validation_pool_refuses_at_once_when_its_backlog_is_full():
    pool = ValidationPool(threads=1, backlog=1)
    release = threading.Event()
    running = [pool.submit(release.wait, 10), pool.submit(release.wait, 10)]
    started = time.monotonic()
    with pytest.raises(Busy):
        pool.submit(release.wait, 10)
    assert time.monotonic() - started < 0.1 and pool.pending == 2
    release.set()
    assert [f.result(5) for f in running] == [True, True]
    time.sleep(0.05)
    assert pool.pending == 0 and pool.submit(lambda: 7).result(5) == 7
    pool.close()


def test_a_full_validation_pool_answers_503(tmp_path, fake_engine, small_portrait, short_speech, monkeypatch):
    busy = {"error": "the server is busy checking other uploads; retry in 5 s"}
    with make_client(tmp_path, workers=False) as client:
        with monkeypatch.context() as patch:
            patch.setattr(ValidationPool, "full", lambda self: True)  # seen at the door: the body is not read
            r = post(client, small_portrait, short_speech)
        assert (r.status_code, r.json(), r.headers["retry-after"], r.headers["connection"]) == (503, busy, "5", "close")

        def taken(self, fn, *args):  # free at the door, taken by the time the body was in
            raise Busy()

        monkeypatch.setattr(ValidationPool, "submit", taken)
        r = post(client, small_portrait, short_speech)
        assert (r.status_code, r.json()) == (503, busy)
    assert list((tmp_path / "data" / "uploads").iterdir()) == []


def test_expensive_checks_run_on_the_validation_threads_only(tmp_path, fake_engine, small_portrait, short_speech,
                                                             monkeypatch):
    real, threads = admission.check_media, []

    def recording(*args, **kwargs):
        threads.append(threading.current_thread().name)
        return real(*args, **kwargs)

    monkeypatch.setattr(admission, "check_media", recording)
    with make_client(tmp_path, workers=False, validation_threads=1) as client:
        assert [post(client, small_portrait, short_speech).status_code for _ in range(3)] == [202] * 3
    assert len(threads) == 3 and all(t.startswith("validate") for t in threads), threads


# -- browser-facing -----------------------------------------------------------------------

def test_security_headers_on_every_answer(tmp_path, fake_engine):
    with make_client(tmp_path, workers=False) as client:
        for path in ("/", "/v1/jobs", "/v1/jobs/" + "0" * 32, "/healthz", "/static/app.js", "/docs"):
            r = client.get(path)
            assert r.headers["x-frame-options"] == "DENY", path
            assert r.headers["x-content-type-options"] == "nosniff" and r.headers["referrer-policy"] == "no-referrer"
            assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
        page = client.get("/").headers["content-security-policy"]
        assert "script-src 'self';" in page and "unsafe-inline" not in page
        docs = client.get("/docs")
        inline = re.findall(r"<script>(.*?)</script>", docs.text, flags=re.S)
        assert len(inline) == 1  # allowed by its hash, nothing else inline
        digest = base64.b64encode(hashlib.sha256(inline[0].encode()).digest()).decode()
        assert f"'sha256-{digest}'" in docs.headers["content-security-policy"]


def test_unsatisfiable_range_is_a_json_416(tmp_path, fake_engine, small_portrait, short_speech):
    with make_client(tmp_path) as client:
        done = wait_for(client, post(client, small_portrait, short_speech).json()["id"])
        size = len(client.get(done["video_url"]).content)
        r = client.get(done["video_url"], headers={"Range": f"bytes={size + 10}-"})
        assert r.status_code == 416 and r.headers["content-range"] == f"bytes */{size}"
        assert r.json() == {"error": f"the range is outside the video ({size} bytes)"}
        assert client.get(done["video_url"], headers={"Range": "bytes=-10"}).status_code == 206


def test_openapi_declares_the_error_bodies_really_returned(tmp_path, fake_engine, small_portrait):
    with make_client(tmp_path, workers=False) as client:
        doc = client.get("/openapi.json").json()
        error = doc["components"]["schemas"]["ErrorBody"]
        assert error["required"] == ["error"] and list(error["properties"]) == ["error"]
        create = doc["paths"]["/v1/jobs"]["post"]["responses"]
        for code in ("400", "401", "403", "413", "422", "429", "503", "507"):
            assert create[code]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ErrorBody"}
        assert doc["paths"]["/v1/jobs/{job_id}"]["get"]["responses"]["404"]["content"]["application/json"][
            "schema"]["$ref"].endswith("/ErrorBody")
        assert create["202"]["content"]["application/json"]["schema"]["$ref"].endswith("/JobView")
        answers = [client.get("/v1/jobs/" + "0" * 32), client.get("/v1/jobs?limit=0"),
                   client.post("/v1/jobs", files={"image": ("f.png", small_portrait.read_bytes())})]
        assert [a.status_code for a in answers] == [404, 422, 400]
        assert all(set(a.json()) == {"error"} and isinstance(a.json()["error"], str) for a in answers)


# -- faults -------------------------------------------------------------------------------

def test_a_full_disk_is_a_507_before_the_body_is_read(tmp_path, fake_engine, small_portrait, short_speech,
                                                      monkeypatch):
    from genhuman.server.storage import Storage

    monkeypatch.setattr(Storage, "free_bytes", lambda self: 10 << 20)  # under the 64 MB reserve
    with make_client(tmp_path, workers=False) as client:
        r = post(client, small_portrait, short_speech)
    assert (r.status_code, r.json()) == (507, {"error": "the server is out of disk space; retry later"})
    assert list((tmp_path / "data" / "uploads").iterdir()) == []


def test_disk_full_while_writing_removes_the_partial_upload(tmp_path, fake_engine, small_portrait, short_speech,
                                                            monkeypatch):
    import genhuman.server.storage as storage

    class FillsUp(io.FileIO):
        def write(self, data):
            super().write(bytes(data)[:100])
            raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path))

    monkeypatch.setattr(storage, "open", lambda path, mode: FillsUp(path, "w"), raising=False)
    with make_client(tmp_path, workers=False) as client:
        r = post(client, small_portrait, short_speech)
    assert (r.status_code, r.json()) == (507, {"error": "the server is out of disk space; retry later"})
    assert list((tmp_path / "data" / "uploads").iterdir()) == []


def test_an_internal_error_names_no_server_path(tmp_path, fake_engine, small_portrait, short_speech):
    with make_client(tmp_path) as client:
        done = wait_for(client, post(client, small_portrait, short_speech, seed="14").json()["id"])
    assert (done["status"], done["error"]) == ("failed", "internal error: RuntimeError")


def test_an_outcome_the_database_refuses_is_recorded_later(tmp_path):
    from genhuman.server.db import RUNNING, SUCCEEDED
    from genhuman.server.jobs import JobStore
    from genhuman.server.storage import Storage
    from genhuman.server.worker import Worker

    store = JobStore(f"sqlite:///{tmp_path / 'jobs.sqlite3'}", max_queue=10, max_attempts=2)
    job_id = store.create(engine="fake", options={}, text=None, image_file="a", audio_file="b")["id"]
    store.claim_next("worker-0")
    real, refusals = store.finish, [0]

    def flaky(*args, **kwargs):
        if refusals[0] < 4:  # more than the worker's tries: the outcome waits for the next loop
            refusals[0] += 1
            raise OSError(errno.ENOSPC, "database or disk is full")
        return real(*args, **kwargs)

    store.finish = flaky  # type: ignore[method-assign]
    worker = Worker("worker-0", store, Storage(tmp_path / "data"), None, threading.Event())
    worker.finish(job_id, SUCCEEDED, output_file="x.mp4")
    assert store.get(job_id).status == RUNNING and len(worker.unrecorded) == 1
    with pytest.raises(OSError):  # what the loop does before each claim (and logs): refusal 4, kept
        worker.record_pending()
    assert len(worker.unrecorded) == 1
    worker.record_pending()
    assert store.get(job_id).status == SUCCEEDED and worker.unrecorded == []


def test_start_up_removes_orphan_uploads(tmp_path, fake_engine, small_portrait, short_speech):
    with make_client(tmp_path, workers=False) as client:
        job = post(client, small_portrait, short_speech).json()
    uploads = tmp_path / "data" / "uploads"
    kept = sorted(p.name for p in uploads.iterdir())
    (uploads / "0123456789abcdef0123456789abcdef.png").write_bytes(b"left by a crash during validation")
    with make_client(tmp_path, workers=False) as client:
        assert client.get(f"/v1/jobs/{job['id']}").status_code == 200
    assert sorted(p.name for p in uploads.iterdir()) == kept and len(kept) == 2


def test_deleting_a_queued_job_drops_the_avatar_admission_prepared(tmp_path, fake_engine, small_portrait,
                                                                    short_speech):
    with make_client(tmp_path, workers=False) as client:
        job = post(client, small_portrait, short_speech).json()
        handoff = client.app.state.services.handoff
        assert (len(handoff.avatars), len(handoff.digests), fake_engine.prepares) == (1, 1, 1)
        assert client.delete(f"/v1/jobs/{job['id']}").json() == {"deleted": job["id"]}
        assert (len(handoff.avatars), len(handoff.digests)) == (0, 0)


def test_a_database_that_refuses_claims_is_logged_once_and_retried(tmp_path, caplog, monkeypatch):
    import genhuman.server.worker as worker_module
    from genhuman.server.jobs import JobStore
    from genhuman.server.storage import Storage
    from genhuman.server.worker import Worker

    monkeypatch.setattr(worker_module, "IDLE_WAIT", 0.001)
    monkeypatch.setattr(worker_module, "MAX_BACKOFF", 0.005)
    store = JobStore(f"sqlite:///{tmp_path / 'jobs.sqlite3'}", max_queue=10, max_attempts=2)
    real, calls = store.claim_next, [0]

    def refusing(name):
        calls[0] += 1
        if calls[0] <= 20:
            raise OSError(errno.ENOSPC, "database or disk is full")
        return real(name)

    store.claim_next = refusing  # type: ignore[method-assign]
    stop = threading.Event()
    worker = Worker("worker-0", store, Storage(tmp_path / "data"), None, stop)
    with caplog.at_level("INFO", logger="genhuman.server.worker"):
        worker.start()
        deadline = time.monotonic() + 10
        while calls[0] <= 21 and time.monotonic() < deadline:
            time.sleep(0.01)
        stop.set()
        worker.join(5)
    messages = [r.getMessage() for r in caplog.records]
    assert calls[0] > 21
    assert sum("claiming a job failed" in m for m in messages) == 1, messages
    assert any("the database answers again after 20 failed tries" in m for m in messages), messages


@pytest.mark.parametrize("settings, message", [
    ({"max_output_size": 32}, "max output size must be between 64 and 4096, got 32"),
    ({"max_image_pixels": 100}, "max image pixels must be between 4096 and 200000000, got 100"),
    ({"rate_limit": -1}, "rate limit must be between 0 and 100000 per minute with a burst of at least 1, got -1"),
    ({"validation_threads": 0}, "validation threads must be between 1 and 16 and the backlog between 0 and 1000"),
    ({"body_timeout": 0}, "body timeout must be a positive number of seconds, got 0"),
])
def test_settings_refuse_absurd_limits(tmp_path, settings, message):
    from genhuman.errors import InputError
    from genhuman.server.settings import ServerSettings

    with pytest.raises(InputError) as refused:
        ServerSettings(data_dir=tmp_path, **settings).resolve()
    assert str(refused.value).startswith(message)


def test_serve_flags_fill_the_settings(monkeypatch, tmp_path):
    import argparse

    from genhuman.cli import serve

    parser = argparse.ArgumentParser()
    serve.register(parser.add_subparsers())
    args = parser.parse_args(["serve", "--data-dir", str(tmp_path), "--max-output-size", "512", "--max-image-mpx",
                              "8", "--rate-limit", "0", "--client-token", "b", "--admin-token", "a"])
    built = {}
    monkeypatch.setattr("genhuman.server.app.create_app", lambda settings: built.setdefault("s", settings))
    monkeypatch.setattr("uvicorn.run", lambda app, **kwargs: built.setdefault("uvicorn", kwargs))
    assert args.func(args) == 0
    s = built["s"]
    assert (s.max_output_size, s.max_image_pixels, s.rate_limit, s.tokens, s.admin_token) == (
        512, 8_000_000, 0.0, ["b"], "a")
    assert built["uvicorn"]["timeout_keep_alive"] == 5
