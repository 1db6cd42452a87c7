"""API behaviour through TestClient (in-process), with the fake engine for control."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from genhuman.errors import InputError
from genhuman.server.app import create_app
from genhuman.server.settings import ServerSettings

from .conftest import silence_wav, wait_for


def make_client(tmp_path, workers: bool = True, **settings) -> TestClient:
    settings.setdefault("default_engine", "fake")
    app = create_app(ServerSettings(data_dir=tmp_path / "data", **settings), start_workers=workers)
    return TestClient(app, base_url="http://127.0.0.1:8000")  # the Host a loopback server answers to


def submit(client, image, audio=None, **fields):
    files = {"image": (image.name, image.read_bytes(), "image/png")}
    if audio is not None:
        files["audio"] = (audio.name, audio.read_bytes(), "audio/wav")
    return client.post("/v1/jobs", files=files, data=fields)


def test_job_lifecycle(tmp_path, fake_engine, small_portrait, short_speech):
    with make_client(tmp_path) as client:
        r = submit(client, small_portrait, short_speech, fps="10", seed="3")
        assert r.status_code == 202, r.text
        job = r.json()
        assert r.headers["location"] == f"/v1/jobs/{job['id']}"
        # the server's output cap is the job's max_size when the request sets none
        assert job["status"] == "queued" and job["options"] == {"fps": 10, "seed": 3, "max_size": 1024}
        done = wait_for(client, job["id"])
        assert done["status"] == "succeeded", done
        assert done["progress"] == 1.0 and done["attempts"] == 1
        assert done["result"] == {"frames": 4, "fps": 10, "width": 64, "height": 64, "seconds": 0.4,
                                  "avatar_cache": "admission"}  # prepared once, while checking the upload
        assert {"engine_load", "prepare_avatar", "animate", "render", "queued", "run"} <= set(done["timings"])
        video = client.get(done["video_url"])
        assert video.status_code == 200 and video.headers["content-type"] == "video/mp4"
        assert video.content[4:8] == b"ftyp"
        part = client.get(done["video_url"], headers={"Range": "bytes=0-99"})
        assert part.status_code == 206 and part.content == video.content[:100]
        for malformed in ("bytes=100-50", "bytes=abc", "items=0-1"):  # ignored: the whole video
            whole = client.get(done["video_url"], headers={"Range": malformed})
            assert whole.status_code == 200 and whole.content == video.content, malformed
        attach = client.get(done["video_url"] + "?download=1")
        assert attach.headers["content-disposition"].startswith("attachment")
        assert [j["id"] for j in client.get("/v1/jobs").json()["jobs"]] == [job["id"]]
        assert client.post(f"/v1/jobs/{job['id']}/cancel").status_code == 409
        assert client.delete(f"/v1/jobs/{job['id']}").json() == {"deleted": job["id"]}
        assert client.get(f"/v1/jobs/{job['id']}").status_code == 404
        assert list((tmp_path / "data" / "uploads").iterdir()) == []
        assert list((tmp_path / "data" / "results").iterdir()) == []
        # a second job reuses the worker's engine instance (the API validates with its own one)
        loads = fake_engine.loads
        wait_for(client, submit(client, small_portrait, short_speech).json()["id"])
        assert fake_engine.loads == loads <= 2


def test_text_to_speech_job(tmp_path, fake_engine, small_portrait):
    with make_client(tmp_path) as client:
        r = submit(client, small_portrait, text="Hello, this is a test of the voice.")
        assert r.status_code == 202, r.text
        assert r.json()["text"] == "Hello, this is a test of the voice."
        assert wait_for(client, r.json()["id"])["status"] == "succeeded"


def test_engine_input_error_fails_job_with_reason(tmp_path, fake_engine, small_portrait, short_speech):
    with make_client(tmp_path) as client:
        job = submit(client, small_portrait, short_speech, seed="13").json()
        done = wait_for(client, job["id"])
        assert done["status"] == "failed" and done["error"] == "no face found in the image"
        assert client.get(f"/v1/jobs/{job['id']}/video").status_code == 409


def test_cancel_queued_and_running(tmp_path, fake_engine, small_portrait, short_speech, monkeypatch):
    monkeypatch.setenv("GENHUMAN_FAKE_DELAY", "0.3")
    monkeypatch.setenv("GENHUMAN_FAKE_FRAMES", "40")
    with make_client(tmp_path) as client:
        first = submit(client, small_portrait, short_speech).json()
        wait_for(client, first["id"], until=("running",))
        second = submit(client, small_portrait, short_speech).json()
        assert client.get(f"/v1/jobs/{second['id']}").json()["queue_position"] == 0
        assert client.post(f"/v1/jobs/{second['id']}/cancel").json()["status"] == "cancelled"
        assert client.delete(f"/v1/jobs/{first['id']}").status_code == 409
        client.post(f"/v1/jobs/{first['id']}/cancel")
        done = wait_for(client, first["id"], timeout=10)
        assert done["status"] == "cancelled" and done["error"] == "cancelled by the client"
        assert not (tmp_path / "data" / "results" / f"{first['id']}.mp4").exists()


def test_queue_full_gives_429_with_retry_after(tmp_path, fake_engine, small_portrait, short_speech):
    with make_client(tmp_path, workers=False, max_queue=2) as client:
        assert [submit(client, small_portrait, short_speech).status_code for _ in range(3)] == [202, 202, 429]
        r = submit(client, small_portrait, short_speech)
        assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
        assert "queue is full" in r.json()["error"]
        assert client.get("/healthz").json()["queued"] == 2
        assert len(list((tmp_path / "data" / "uploads").iterdir())) == 4  # refused ones left nothing


def _blank_png() -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (96, 96), (200, 180, 160)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_lite_controls_are_form_fields(tmp_path, fake_engine, small_portrait, short_speech):
    with make_client(tmp_path, workers=False) as client:
        r = submit(client, small_portrait, short_speech, head_motion="0", blink_rate="30", mouth_scale="1.5",
                   expression="neutral")
        assert r.status_code == 202, r.text
        assert r.json()["options"] == {"head_motion": 0.0, "blink_rate": 30.0, "mouth_scale": 1.5,
                                       "expression": "neutral", "max_size": 1024}


@pytest.mark.parametrize("fields, files, status, message", [
    ({}, {}, 400, "send a portrait image in the 'image' field"),
    ({}, {"image": "portrait"}, 400, "send speech in the 'audio' field, or text to speak in the 'text' field"),
    ({}, {"image": "text", "audio": "speech"}, 400, "the uploaded image is not an image"),
    ({}, {"image": "truncated", "audio": "speech"}, 400, "the uploaded image is corrupt or truncated"),
    ({"seed": "-1"}, {"image": "portrait", "audio": "speech"}, 400, "seed must be between 0 and 2147483647, got -1"),
    ({}, {"image": "portrait", "audio": "text"}, 400, "the uploaded audio is not a readable audio"),
    ({}, {"image": "portrait", "audio": "silence"}, 400, "the uploaded audio is silent; record or upload speech"),
    ({}, {"image": "portrait", "audio": "empty"}, 400, "the uploaded audio file is empty"),
    ({"fps": "abc"}, {"image": "portrait", "audio": "speech"}, 400, "fps must be an integer, got 'abc'"),
    ({"fps": "0"}, {"image": "portrait", "audio": "speech"}, 400, "fps must be between 1 and 60, got 0"),
    ({"fps": "61"}, {"image": "portrait", "audio": "speech"}, 400, "fps must be between 1 and 60, got 61"),
    ({"steps": "0"}, {"image": "portrait", "audio": "speech"}, 400, "steps must be between 1 and 200, got 0"),
    ({"head_motion": "3"}, {"image": "portrait", "audio": "speech"}, 400,
     "head motion must be between 0.0 and 2.0, got 3.0"),
    ({"blink_rate": "-1"}, {"image": "portrait", "audio": "speech"}, 400,
     "blink rate must be between 0.0 and 60.0, got -1.0"),
    ({"mouth_scale": "big"}, {"image": "portrait", "audio": "speech"}, 400, "mouth scale must be a number, got 'big'"),
    ({"expression": "smirk"}, {"image": "portrait", "audio": "speech"}, 400,
     "expression must be one of: keep, neutral, got 'smirk'"),
    ({"steps": "-3"}, {"image": "portrait", "audio": "speech"}, 400, "steps must be between 1 and 200, got -3"),
    ({"cfg": "abc"}, {"image": "portrait", "audio": "speech"}, 400, "cfg must be a number, got 'abc'"),
    ({"cfg": "nan"}, {"image": "portrait", "audio": "speech"}, 400, "cfg must be a finite number, got nan"),
    ({"face_index": "64"}, {"image": "portrait", "audio": "speech"}, 400,
     "face index must be between 0 and 63, got 64"),
    ({"schedule": "fast"}, {"image": "portrait", "audio": "speech"}, 400,
     "schedule must be one of: official, streaming, got 'fast'"),
    ({"paste_back": "2"}, {"image": "portrait", "audio": "speech"}, 400, "paste back must be true or false"),
    ({"width": "100"}, {"image": "portrait", "audio": "speech"}, 400,  # the engine's own refusal
     "width and height must be multiples of 8 for the fake engine, got 100x-"),
    ({"accelerated": "maybe"}, {"image": "portrait", "audio": "speech"}, 400, "accelerated must be true or false"),
    ({"engine": "../../bin/sh"}, {"image": "portrait", "audio": "speech"}, 400, "unknown engine '../../bin/sh'"),
    ({"text": "x" * 3000}, {"image": "portrait"}, 400, "text is too long (3000 characters)"),
    ({"text": "hi\x00there"}, {"image": "portrait"}, 400, "text contains control characters"),
    ({}, {"image": "blank", "audio": "speech"}, 400, "no face found in the uploaded image"),
    ({"face_index": "2"}, {"image": "portrait", "audio": "speech"}, 400,
     "face index 2 requested but only 1 face found in the uploaded image"),
])
def test_bad_inputs_give_json_errors(tmp_path, fake_engine, small_portrait, short_speech,
                                     fields, files, status, message):
    content = {"portrait": small_portrait.read_bytes(), "speech": short_speech.read_bytes(),
               "text": b"not media at all", "empty": b"", "truncated": small_portrait.read_bytes()[:300],
               "silence": silence_wav(tmp_path / "silence.wav").read_bytes(), "blank": _blank_png()}
    with make_client(tmp_path, workers=False) as client:
        r = client.post("/v1/jobs", data=fields,
                        files={k: (f"../../etc/{k}.png", content[v]) for k, v in files.items()})
        assert r.status_code == status, r.text
        assert r.json()["error"].startswith(message), r.json()
        assert "uploads" not in r.json()["error"]  # no server paths leak
        assert list((tmp_path / "data" / "uploads").iterdir()) == []
        assert client.get("/healthz").json()["queued"] == 0


def test_upload_size_limits(tmp_path, fake_engine, small_portrait):
    with make_client(tmp_path, workers=False, max_upload_mb=0.05) as client:
        big = b"\0" * 60_000  # over the per-file cap, under the request cap
        r = client.post("/v1/jobs", files={"image": ("a.png", big)}, data={"text": "hi"})
        assert r.status_code == 413 and r.json()["error"] == "the image file is too large; the limit is 0.05 MB"
        huge = b"\0" * 1_000_000  # over the whole-request cap: refused from Content-Length
        r = client.post("/v1/jobs", files={"image": ("a.png", huge)})
        assert r.status_code == 413 and r.json()["error"].startswith("the request is too large")

        def chunks():  # no Content-Length: counted as it streams
            yield b"--b\r\nContent-Disposition: form-data; name=\"image\"; filename=\"a.png\"\r\n\r\n"
            for _ in range(100):
                yield b"\0" * 10_000
        r = client.post("/v1/jobs", content=chunks(), headers={"content-type": "multipart/form-data; boundary=b"})
        assert r.status_code == 413 and r.json()["error"].startswith("the request is too large")
        assert list((tmp_path / "data" / "uploads").iterdir()) == []


def test_unknown_ids_and_bad_queries(tmp_path, fake_engine):
    with make_client(tmp_path, workers=False) as client:
        assert client.get("/v1/jobs/..%2F..%2Fetc%2Fpasswd").status_code == 404
        r = client.get("/v1/jobs/" + "0" * 32 + "/video")
        assert r.status_code == 404 and r.json() == {"error": "no job with id '" + "0" * 32 + "'"}
        assert client.get("/v1/jobs?limit=0").status_code == 422
        assert client.get("/v1/jobs?status=bogus").json()["error"].startswith("status:")


def test_token_required_when_set(tmp_path, fake_engine, small_portrait, short_speech):
    with make_client(tmp_path, workers=False, token="s3cret") as client:
        assert client.get("/healthz").status_code == 200
        assert client.get("/").status_code == 200
        r = client.get("/v1/jobs")
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
        assert client.get("/v1/jobs", headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert client.get("/v1/jobs", headers={"Authorization": "Bearer s3cret"}).status_code == 200


def test_settings_refuse_public_host_without_token(monkeypatch):
    from genhuman.errors import InputError

    monkeypatch.delenv("GENHUMAN_TOKEN", raising=False)
    with pytest.raises(InputError, match="refusing to listen on '0.0.0.0' without a token"):
        ServerSettings(host="0.0.0.0").resolve()
    assert ServerSettings(host="::1").resolve().token is None
    monkeypatch.setenv("GENHUMAN_TOKEN", "t")
    assert ServerSettings(host="0.0.0.0").resolve().token == "t"


def test_cors_off_by_default(tmp_path, fake_engine):
    with make_client(tmp_path, workers=False) as client:
        r = client.get("/healthz", headers={"Origin": "http://evil.example"})
        assert "access-control-allow-origin" not in r.headers
    with make_client(tmp_path, workers=False, cors_origins=["http://ok.example"]) as client:
        r = client.get("/healthz", headers={"Origin": "http://ok.example"})
        assert r.headers["access-control-allow-origin"] == "http://ok.example"


def test_page_and_openapi(tmp_path, fake_engine):
    with make_client(tmp_path, workers=False) as client:
        page = client.get("/").text
        assert "<script src=\"/static/app.js\"" in page and "http" not in page.split("<body")[0].replace("http-equiv", "")
        assert client.get("/static/app.js").status_code == 200
        paths = client.get("/openapi.json").json()["paths"]
        assert {"/v1/jobs", "/v1/jobs/{job_id}", "/v1/jobs/{job_id}/video", "/v1/jobs/{job_id}/cancel",
                "/healthz", "/v1/engines"} <= set(paths)


def test_openapi_form_fields_come_from_the_request_specs(tmp_path, fake_engine):
    from genhuman.request import AnimateRequest, EngineOptions, request_options

    with make_client(tmp_path, workers=False) as client:
        document = client.get("/openapi.json").json()
    body = document["paths"]["/v1/jobs"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    props = document["components"]["schemas"][body["$ref"].rsplit("/", 1)[1]]["properties"]
    specs = dict(request_options(AnimateRequest))
    fps = props["fps"]
    assert fps["description"].startswith(specs["fps"].help)
    assert (fps["type"], fps["minimum"], fps["maximum"]) == ("integer", specs["fps"].low, specs["fps"].high)
    assert (props["cfg"]["type"], props["cfg"]["minimum"], props["cfg"]["maximum"]) == ("number", 0.0, 50.0)
    assert props["steps"]["description"].startswith(specs["steps"].help) and "echomimic" in props["steps"]["description"]
    assert props["schedule"]["enum"] == list(specs["schedule"].choices)
    assert props["paste_back"]["type"] == props["accelerated"]["type"] == "boolean"
    assert props["accelerated"]["description"].startswith(dict(request_options(EngineOptions))["accelerated"].help)
    offered = {n for n, s in request_options(AnimateRequest) if s.server} | {"accelerated"}
    assert offered | {"image", "audio", "engine"} == set(props)  # pose (a server path) is not offered
    assert all(props[n].get("description") for n in props)


@pytest.mark.parametrize("name, value", [("fps", "0"), ("steps", "-3"), ("steps", "0"), ("cfg", "abc"),
                                         ("seed", "1.5"), ("max_size", "9000"), ("accelerated", "maybe")])
def test_option_errors_are_the_cli_and_python_api_messages(tmp_path, fake_engine, small_portrait, short_speech,
                                                             name, value):
    from genhuman.request import AnimateRequest, EngineOptions, request_options

    spec = dict(request_options(AnimateRequest), **dict(request_options(EngineOptions)))[name]
    with pytest.raises(InputError) as parsed:
        spec.parse(name, value)  # what `genhuman animate --<name> <value>` reports
    with make_client(tmp_path, workers=False) as client:
        r = submit(client, small_portrait, short_speech, **{name: value})
    assert r.status_code == 400 and r.json() == {"error": str(parsed.value)}
    if name != "accelerated" and value.lstrip("-").isdigit():
        with pytest.raises(InputError) as built:
            AnimateRequest(**{name: int(value)})  # the Python API: the same sentence
        assert str(built.value) == r.json()["error"]


def test_api_docs_are_served_offline(tmp_path, fake_engine):
    with make_client(tmp_path, workers=False) as client:
        page = client.get("/docs")
        assert page.status_code == 200
        assert "/docs-assets/swagger-ui-bundle.js" in page.text and "cdn" not in page.text.lower()
        script = client.get("/docs-assets/swagger-ui-bundle.js")
        assert script.status_code == 200 and len(script.content) > 100_000
        assert client.get("/docs-assets/swagger-ui.css").status_code == 200
        assert "/v1/jobs" in client.get("/openapi.json").json()["paths"]


def test_diffusion_engines_need_weights_and_run_with_them(tmp_path, small_portrait, short_speech):
    from genhuman.checkpoints.tiny import save_tiny_official_checkpoint

    with make_client(tmp_path / "a", workers=False, default_engine="lite") as client:
        listed = {e["name"]: e for e in client.get("/v1/engines").json()["engines"]}
        assert listed["lite"]["available"] and not listed["echomimic"]["available"]
        assert "--weights echomimic=DIR" in listed["echomimic"]["reason"]
        r = submit(client, small_portrait, short_speech, engine="echomimic")
        assert r.status_code == 400 and "has no weights on this server" in r.json()["error"]

    weights = save_tiny_official_checkpoint(tmp_path / "w", "audio")
    with make_client(tmp_path / "b", default_engine="lite", weights={"echomimic": weights}) as client:
        assert {e["name"]: e for e in client.get("/v1/engines").json()["engines"]}["echomimic"]["available"]
        fields = dict(engine="echomimic", steps="1", max_size="128", width="64", height="64")
        bad_size = {**fields, "width": "72", "height": "72"}
        # a size these weights cannot generate, before any worker loaded them: the API cannot
        # know yet, so the job is accepted and fails with the engine's one line (never a 500)
        r = submit(client, small_portrait, short_speech, **bad_size)
        assert r.status_code == 202, r.text
        bad = wait_for(client, r.json()["id"], timeout=180)
        assert bad["status"] == "failed", bad
        message = bad["error"]
        assert message.startswith("width and height must be multiples of") and message.endswith(
            "for these weights, got 72x72") and "\n" not in message, message
        job = submit(client, small_portrait, short_speech, **fields).json()
        done = wait_for(client, job["id"], timeout=180)
        assert done["status"] == "succeeded", done
        assert done["result"]["fps"] == 24 and done["result"]["frames"] >= 1
        assert done["result"]["avatar_cache"] == "miss"
        assert client.get(done["video_url"]).content[4:8] == b"ftyp"
        again = wait_for(client, submit(client, small_portrait, short_speech, **fields).json()["id"], timeout=180)
        assert again["status"] == "succeeded" and again["result"]["avatar_cache"] == "hit", again
        # now that a worker holds the weights, the same refusal is a 400 at submission
        r = submit(client, small_portrait, short_speech, **bad_size)
        assert r.status_code == 400 and r.json() == {"error": message}


def test_settings_refuse_a_missing_weights_folder(tmp_path):
    with pytest.raises(InputError, match="weights folder for echomimic not found"):
        ServerSettings(data_dir=tmp_path, weights={"echomimic": tmp_path / "nowhere"}).resolve()


def test_start_up_removes_half_written_videos(tmp_path, fake_engine):
    results = tmp_path / "data" / "results"
    results.mkdir(parents=True)
    (results / ".0123456789ab.partial.mp4").write_bytes(b"half")  # left by a SIGKILLed server
    (results / "kept.mp4").write_bytes(b"done")
    with make_client(tmp_path, workers=False):
        pass
    assert sorted(p.name for p in results.iterdir()) == ["kept.mp4"]


def test_dns_rebinding_and_cross_origin_posts_are_refused(tmp_path, fake_engine, portrait_path, speech_path):
    client = make_client(tmp_path, workers=False)
    listed = client.get("/v1/jobs", headers={"Host": "attacker.example"})
    assert listed.status_code == 403 and "attacker.example" in listed.json()["error"]
    assert client.get("/v1/jobs", headers={"Host": "localhost:8000"}).status_code == 200
    assert client.get("/v1/jobs", headers={"Host": "[::1]:8000"}).status_code == 200
    files = {"image": portrait_path.read_bytes(), "audio": speech_path.read_bytes()}
    cross = client.post("/v1/jobs", files=files, headers={"Origin": "https://evil.example"})
    assert cross.status_code == 403 and "cross-origin" in cross.json()["error"]
    fetch = client.post("/v1/jobs", files=files, headers={"Sec-Fetch-Site": "cross-site"})
    assert fetch.status_code == 403
    same = client.post("/v1/jobs", files=files, headers={"Origin": "http://127.0.0.1:8000"})
    assert same.status_code == 202, same.text


def test_allowed_hosts_and_cors_origins_open_what_they_name(tmp_path, fake_engine, portrait_path, speech_path):
    client = make_client(tmp_path, workers=False, allowed_hosts=["avatar.lan"], cors_origins=["https://app.lan"])
    assert client.get("/v1/jobs", headers={"Host": "avatar.lan:8000"}).status_code == 200
    files = {"image": portrait_path.read_bytes(), "audio": speech_path.read_bytes()}
    assert client.post("/v1/jobs", files=files, headers={"Origin": "https://app.lan"}).status_code == 202
