"""Captions through an OpenAI-compatible endpoint (a local stand-in server)."""

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import cv2
import numpy as np
import pytest

from genhuman.curate.captions import caption_frame
from genhuman.curate.config import CaptionConfig


@pytest.fixture()
def server():
    seen = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            seen.append((self.path, self.headers.get("Authorization"), body))
            reply = json.dumps({"choices": [{"message": {"content": " A person talks. "}}]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *args):
            pass

    httpd = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}/v1", seen
    httpd.shutdown()


def test_caption_request_and_reply(server, monkeypatch):
    url, seen = server
    monkeypatch.setenv("MY_KEY", "secret")
    frame = np.zeros((32, 48, 3), np.uint8)
    frame[:, :24] = (255, 0, 0)
    config = CaptionConfig(enabled=True, endpoint=url, model="vlm", api_key_env="MY_KEY")
    assert caption_frame(frame, config) == "A person talks."
    path, auth, body = seen[0]
    assert path == "/v1/chat/completions" and auth == "Bearer secret" and body["model"] == "vlm"
    text, image = body["messages"][0]["content"]
    assert text == {"type": "text", "text": config.prompt}
    jpeg = base64.b64decode(image["image_url"]["url"].split(",", 1)[1])
    decoded = cv2.cvtColor(cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    assert decoded.shape == frame.shape and decoded[16, 5, 0] > 200 and decoded[16, 40].max() < 40


def test_unreachable_endpoint_leaves_the_caption_empty():
    config = CaptionConfig(enabled=True, endpoint="http://127.0.0.1:9/v1", model="vlm", timeout_s=2)
    assert caption_frame(np.zeros((8, 8, 3), np.uint8), config) == ""
