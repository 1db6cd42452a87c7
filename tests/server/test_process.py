"""The server as a real uvicorn process on a loopback port: crash recovery and load."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from genhuman.server.db import FAILED, QUEUED, RUNNING
from genhuman.server.jobs import JobStore

from .conftest import wait_for

ENGINE = "lite"


def post_job(client: httpx.Client, image, audio, **fields) -> httpx.Response:
    return client.post("/v1/jobs", data={"engine": ENGINE, **fields},
                       files={"image": (image.name, image.read_bytes()), "audio": (audio.name, audio.read_bytes())})


def test_recover_requeues_then_fails_after_max_attempts(tmp_path):
    store = JobStore(f"sqlite:///{tmp_path / 'jobs.sqlite3'}", max_queue=10, max_attempts=2)
    job_id = store.create(engine="lite", options={}, text=None, image_file="a.png", audio_file="a.wav")["id"]
    for attempt in (1, 2):
        assert store.claim_next("w").id == job_id
        assert store.claim_next("w2") is None  # claimed once, never twice
        assert store.get(job_id).attempts == attempt
        requeued, failed = store.recover()  # as if the server had been killed mid-job
        assert (requeued, failed) == ((1, 0) if attempt == 1 else (0, 1))
    job = store.get(job_id)
    assert job.status == FAILED
    assert job.error == "the server stopped while this job was running, 2 time(s); giving up"
    assert store.count(QUEUED, RUNNING) == 0


def test_clean_shutdown_release_does_not_count_an_attempt(tmp_path):
    store = JobStore(f"sqlite:///{tmp_path / 'jobs.sqlite3'}", max_queue=10, max_attempts=1)
    job_id = store.create(engine="lite", options={}, text=None, image_file="a", audio_file="b")["id"]
    store.claim_next("w")
    store.release(job_id)
    job = store.get(job_id)
    assert (job.status, job.attempts, job.message) == (QUEUED, 0, "re-queued after a server shutdown")
    assert store.recover() == (0, 0) and store.claim_next("w").attempts == 1


def test_claims_are_atomic_across_threads(tmp_path):
    store = JobStore(f"sqlite:///{tmp_path / 'jobs.sqlite3'}", max_queue=100, max_attempts=2)
    ids = {store.create(engine="lite", options={}, text=None, image_file="a", audio_file="b")["id"]
           for _ in range(40)}
    claimed: list[str] = []

    def drain(name: str) -> None:
        while (job := store.claim_next(name)) is not None:
            claimed.append(job.id)

    threads = [threading.Thread(target=drain, args=(f"w{i}",)) for i in range(4)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert sorted(claimed) == sorted(ids)  # every job exactly once


@pytest.mark.slow
def test_kill_and_restart(tmp_path, start_server, portrait_path, speech_path, small_portrait, short_speech):
    """SIGKILL mid-job, restart: the interrupted job re-runs, queued ones run, none lost or doubled."""
    data = tmp_path / "data"
    data.mkdir()
    server = start_server("--max-attempts", "2", data_dir=data)
    with httpx.Client(base_url=server.url, timeout=30) as client:
        long_job = post_job(client, portrait_path, speech_path, max_size="128").json()["id"]
        queued = [post_job(client, small_portrait, short_speech).json()["id"] for _ in range(3)]
        deadline = time.monotonic() + 60
        while (job := client.get(f"/v1/jobs/{long_job}").json())["progress"] <= 0.05:
            assert job["status"] in ("queued", "running") and time.monotonic() < deadline, job
            time.sleep(0.02)
        assert job["status"] == "running", f"the long job ended before it could be interrupted: {job}"
    killed_at = job["progress"]
    server.kill()

    started = time.monotonic()
    server = start_server("--max-attempts", "2", data_dir=data)
    with httpx.Client(base_url=server.url, timeout=30) as client:
        finished = {i: wait_for(client, i, timeout=120) for i in [long_job, *queued]}
        recovery = time.monotonic() - started
        jobs = client.get("/v1/jobs?limit=200").json()["jobs"]
        assert sorted(j["id"] for j in jobs) == sorted(finished)  # nothing lost, nothing added
        assert {i: (j["status"], j["attempts"]) for i, j in finished.items()} == {
            long_job: ("succeeded", 2), **{i: ("succeeded", 1) for i in queued}}
        for i in finished:
            video = client.get(f"/v1/jobs/{i}/video")
            assert video.status_code == 200 and video.content[4:8] == b"ftyp"
    results = sorted(p.name for p in (data / "results").iterdir())
    assert results == sorted(f"{i}.mp4" for i in finished)  # no stray partial files
    print(f"\nkill-restart: killed at progress {killed_at:.2f}; after restart 4/4 jobs succeeded "
          f"in {recovery:.1f} s; interrupted job attempts=2; lost=0 duplicated=0")


@pytest.mark.slow
def test_load_200_jobs(tmp_path, start_server, small_portrait, short_speech):
    """200 submissions from 8 concurrent clients: each job finishes or is refused with 429."""
    server = start_server("--max-queue", "3")
    image, audio = small_portrait.read_bytes(), short_speech.read_bytes()

    def submit(client: httpx.Client) -> tuple[int, str | None, str | None]:
        r = client.post("/v1/jobs", data={"engine": ENGINE},
                        files={"image": ("face.png", image), "audio": ("speech.wav", audio)})
        return r.status_code, (r.json().get("id") if r.status_code == 202 else None), r.headers.get("retry-after")

    started = time.monotonic()
    # one connection pool shared by the 8 client threads (httpx clients are thread-safe)
    with httpx.Client(base_url=server.url, timeout=60, limits=httpx.Limits(max_connections=8)) as client, \
            ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: submit(client), range(200)))
    submitted = time.monotonic() - started
    statuses = [s for s, _, _ in answers]
    accepted = [i for s, i, _ in answers if s == 202]
    assert set(statuses) <= {202, 429}, statuses
    assert all(int(ra) >= 1 for s, _, ra in answers if s == 429)
    with httpx.Client(base_url=server.url, timeout=30) as client:
        done = [wait_for(client, i, timeout=120) for i in accepted]
        listed = {j["id"] for j in client.get("/v1/jobs?limit=200").json()["jobs"]}
    elapsed = time.monotonic() - started
    succeeded = sum(j["status"] == "succeeded" for j in done)
    assert succeeded == len(accepted) and listed == set(accepted)  # lost = 0
    print(f"\nload: 200 submissions, 8 clients: {len(accepted)} accepted and succeeded, "
          f"{statuses.count(429)} refused with 429, lost=0; submissions took {submitted:.1f} s, "
          f"all done in {elapsed:.1f} s")


def test_delete_that_loses_the_race_to_a_claim_keeps_the_running_job(tmp_path):
    url = f"sqlite:///{tmp_path / 'jobs.sqlite3'}"
    store, worker_side = JobStore(url, max_queue=10, max_attempts=2), JobStore(url, max_queue=10, max_attempts=2)
    job_id = store.create(engine="lite", options={}, text=None, image_file="a", audio_file="b")["id"]
    plain_session = store._session

    def session_where_a_worker_claims_after_the_read():
        session = plain_session()
        read = session.get

        def get(*args, **kwargs):
            row = read(*args, **kwargs)
            assert worker_side.claim_next("worker-0").id == job_id
            return row

        session.get = get
        return session

    store._session = session_where_a_worker_claims_after_the_read
    answer = store.delete(job_id)
    store._session = plain_session
    assert answer is not None and answer.status == RUNNING  # the API turns this into 409
    assert store.get(job_id).status == RUNNING


def test_worker_devices_ask_torch_only_when_an_engine_can_use_an_accelerator(monkeypatch):
    import builtins

    from genhuman.server.worker import default_devices

    real_import = builtins.__import__
    asked: list[str] = []

    def spy(name, *args, **kwargs):
        if name == "torch":
            asked.append(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", spy)
    assert default_devices(None, accelerators=False) == [None]
    assert default_devices(3, accelerators=False) == [None, None, None]
    assert asked == []
    assert len(default_devices(2)) == 2
    assert asked and set(asked) == {"torch"}
