"""Optional captions through any OpenAI-compatible vision endpoint (``/chat/completions``
with an image_url part): the clip's middle frame as a JPEG data URL. Failures are logged
and leave the caption empty: a caption never decides whether a clip is kept."""

from __future__ import annotations

import base64
import json
import logging
import os
import urllib.request

import cv2
import numpy as np

from genhuman.curate.config import CaptionConfig

log = logging.getLogger(__name__)


def request_body(frame: np.ndarray, config: CaptionConfig) -> dict:
    ok, jpeg = cv2.imencode(".jpg", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])
    url = "data:image/jpeg;base64," + base64.b64encode(jpeg.tobytes()).decode("ascii")
    return {"model": config.model, "max_tokens": 120, "messages": [{"role": "user", "content": [
        {"type": "text", "text": config.prompt}, {"type": "image_url", "image_url": {"url": url}}]}]}


def caption_frame(frame: np.ndarray, config: CaptionConfig) -> str:
    headers = {"Content-Type": "application/json"}
    key = os.environ.get(config.api_key_env, "")
    if key:
        headers["Authorization"] = f"Bearer {key}"
    request = urllib.request.Request(config.endpoint.rstrip("/") + "/chat/completions",
                                     data=json.dumps(request_body(frame, config)).encode("utf-8"), headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=config.timeout_s) as response:
            data = json.loads(response.read().decode("utf-8"))
        return str(data["choices"][0]["message"]["content"]).strip()
    except Exception as exc:  # network, HTTP or format: the clip is kept without a caption
        log.warning("caption request to %s failed: %s", config.endpoint, exc)
        return ""
