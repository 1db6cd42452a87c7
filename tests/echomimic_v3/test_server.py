"""The EchoMimicV3 engines behind the HTTP server: listed with the request model's options, a Flash job with a
prompt runs on a tiny official-layout folder, and the avatar cache keeps one avatar per prompt."""

from __future__ import annotations

import numpy as np
from fastapi.testclient import TestClient

from genhuman.media import load_audio, save_image, save_wav
from genhuman.server.app import create_app
from genhuman.server.settings import ServerSettings

from .test_engine import folders  # noqa: F401  (the module fixture)


def _wait(client: TestClient, job_id: str, timeout: float = 120.0) -> dict:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/v1/jobs/{job_id}").json()
        if job["status"] in ("succeeded", "failed", "cancelled"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not finish in {timeout} s")


def test_flash_job_with_a_prompt_through_the_server(folders, speech_path, tmp_path):  # noqa: F811
    image, audio = tmp_path / "grey.png", tmp_path / "half.wav"
    save_image(image, np.full((64, 64, 3), 128, np.uint8))  # Flash needs no face
    save_wav(audio, load_audio(speech_path)[:8000])
    settings = ServerSettings(data_dir=tmp_path / "data", default_engine="lite",
                              weights={"echomimic_v3_flash": folders["flash"]})
    with TestClient(create_app(settings), base_url="http://127.0.0.1:8000") as client:
        listed = {e["name"]: e for e in client.get("/v1/engines").json()["engines"]}
        assert listed["echomimic_v3_flash"]["available"] and not listed["echomimic_v3"]["available"]
        assert {"prompt", "negative_prompt", "steps", "cfg"} <= set(listed["echomimic_v3_flash"]["options"])
        assert "text_cfg" in listed["echomimic_v3"]["options"]
        assert "text_cfg" not in listed["echomimic_v3_flash"]["options"]
        assert "prompt" not in listed["lite"]["options"]

        def submit(**fields) -> dict:
            files = {"image": ("grey.png", image.read_bytes(), "image/png"),
                     "audio": ("half.wav", audio.read_bytes(), "audio/wav")}
            data = dict(engine="echomimic_v3_flash", steps="1", width="32", height="32", **fields)
            r = client.post("/v1/jobs", files=files, data=data)
            assert r.status_code == 202, r.text
            return _wait(client, r.json()["id"])

        first = submit(prompt="A woman is talking.")
        assert first["status"] == "succeeded", first
        assert first["result"]["frames"] == 12 and first["result"]["avatar_cache"] == "miss"
        assert first["options"]["prompt"] == "A woman is talking."
        assert client.get(first["video_url"]).content[4:8] == b"ftyp"
        assert submit(prompt="A woman is talking.")["result"]["avatar_cache"] == "hit"
        assert submit(prompt="A man is talking.")["result"]["avatar_cache"] == "miss"
        r = client.post("/v1/jobs", files={"image": ("grey.png", image.read_bytes(), "image/png"),
                                            "audio": ("half.wav", audio.read_bytes(), "audio/wav")},
                        data=dict(engine="echomimic_v3_flash", prompt="x" * 2001))
        assert r.status_code == 400 and "prompt is too long" in r.json()["error"]
