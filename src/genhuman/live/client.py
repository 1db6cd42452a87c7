"""A scripted live client: a Python stand-in for the browser (benchmarks, tests, load tests).

It opens a real WebRTC session with a server's ``/v1/live/offer``, sends recorded speech as
its microphone (silence between), and records what arrives with arrival times: every video
frame (with how open the avatar's mouth looks), every audio packet's level, and every
data-channel event. Measurements are therefore taken where a user would take them: at the
receiving side, after encoding, transport and decoding.
"""

from __future__ import annotations

import asyncio
import fractions
import json
import time
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np

MIC_PACKET = 960  # 20 ms at 48 kHz
SILENT_RMS = 1e-3  # received audio quieter than this (float scale) is silence


@dataclass
class Received:
    video: list[tuple[float, float]] = field(default_factory=list)  # (arrival, mouth darkness 0-1)
    audio: list[tuple[float, float]] = field(default_factory=list)  # (arrival, rms of the 20 ms packet)
    events: list[tuple[float, dict]] = field(default_factory=list)
    frame_shape: Optional[tuple[int, ...]] = None
    last_frame: Any = None


def _mic_track():
    from aiortc import MediaStreamTrack

    class ScriptedMicrophone(MediaStreamTrack):
        """48 kHz mono s16 in 20 ms packets, paced in real time; silence unless speech is queued."""

        kind = "audio"

        def __init__(self) -> None:
            super().__init__()
            self._pending = np.zeros(0, np.int16)
            self._start: Optional[float] = None
            self._sent = 0
            self.speech_started: list[float] = []  # monotonic time each queued clip began to go out

        def queue(self, samples_16k: np.ndarray) -> None:
            wave = np.interp(np.arange(len(samples_16k) * 3) / 3.0, np.arange(len(samples_16k)), samples_16k)
            self._pending = np.concatenate([self._pending, np.clip(wave * 32767, -32768, 32767).astype(np.int16)])
            self._new_clip = True

        async def recv(self):
            import av

            if self._start is None:
                self._start = time.monotonic()
            due = self._start + self._sent * MIC_PACKET / 48000.0
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            if len(self._pending):
                if getattr(self, "_new_clip", False):
                    self.speech_started.append(time.monotonic())
                    self._new_clip = False
                chunk = self._pending[:MIC_PACKET]
                self._pending = self._pending[MIC_PACKET:]
                chunk = np.pad(chunk, (0, MIC_PACKET - len(chunk)))
            else:
                chunk = np.zeros(MIC_PACKET, np.int16)
            frame = av.AudioFrame.from_ndarray(chunk.reshape(1, -1), format="s16", layout="mono")
            frame.sample_rate = 48000
            frame.pts = self._sent * MIC_PACKET
            frame.time_base = fractions.Fraction(1, 48000)
            self._sent += 1
            return frame

        @property
        def busy(self) -> bool:
            return bool(len(self._pending))

    return ScriptedMicrophone


def mouth_box(image: np.ndarray) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) around the mouth of the face in ``image`` (the first frame), with margin."""
    from genhuman.face import face_landmarks

    h, w = image.shape[:2]
    return box_of_lips(np.asarray(face_landmarks(image).landmarks), w, h)


def box_of_lips(landmarks: np.ndarray, width: int, height: int) -> tuple[int, int, int, int]:
    """The mouth box from a 478-point face mesh (pixels), with margin for the open jaw."""
    points = np.asarray(landmarks)[:, :2]
    lips = points[[61, 291, 0, 17, 13, 14]]
    (x0, y0), (x1, y1) = lips.min(axis=0), lips.max(axis=0)
    pad_x, pad_y = 0.15 * (x1 - x0), 0.6 * (y1 - y0) + 2
    h, w = height, width
    return (int(max(x0 - pad_x, 0)), int(max(y0 - pad_y, 0)), int(min(x1 + pad_x, w)), int(min(y1 + pad_y, h)))


def darkness(image: np.ndarray, box: tuple[int, int, int, int]) -> float:
    """Share of dark pixels in the mouth box: rises as the mouth opens (its interior is dark)."""
    x0, y0, x1, y1 = box
    grey = image[y0:y1, x0:x1].mean(axis=2)
    return float(np.mean(grey < 0.45 * np.median(image.mean(axis=2))))


class LiveClient:
    """``async with LiveClient(url) as c: c.say(wave16k); await c.wait_for("answer")``."""

    def __init__(self, base_url: str, portrait: Optional[str] = None, token: Optional[str] = None,
                 decode_video: bool = True):
        self.base_url = base_url.rstrip("/")
        self.portrait = portrait
        self.token = token
        self.decode_video = decode_video
        self.received = Received()
        self.session: Optional[str] = None
        self.pc: Any = None
        self.channel: Any = None
        self.mic: Any = None
        self.box: Optional[tuple[int, int, int, int]] = None
        self._tasks: list[asyncio.Task] = []
        self._event_seen = asyncio.Event()

    async def __aenter__(self) -> "LiveClient":
        await self.connect()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def connect(self, timeout_s: float = 30.0) -> None:
        import httpx
        from aiortc import RTCPeerConnection, RTCSessionDescription

        self.pc = RTCPeerConnection()
        self.mic = _mic_track()()
        self.pc.addTrack(self.mic)
        self.pc.addTransceiver("video", direction="recvonly")
        self.channel = self.pc.createDataChannel("events")
        self.channel.on("message", self._on_message)
        self.pc.on("track", self._on_track)
        await self.pc.setLocalDescription(await self.pc.createOffer())
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        async with httpx.AsyncClient(timeout=timeout_s) as http:
            reply = await http.post(f"{self.base_url}/v1/live/offer", headers=headers,
                                    json={"sdp": self.pc.localDescription.sdp, "type": "offer",
                                          "portrait": self.portrait})
        if reply.status_code != 200:
            await self.pc.close()
            raise ConnectionRefusedError(f"{reply.status_code}: {reply.json().get('error')}")
        body = reply.json()
        self.session = body["session"]
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=body["sdp"], type="answer"))
        deadline = time.monotonic() + timeout_s
        while self.channel.readyState != "open" or (self.box is None and not self.events("hello")):
            if time.monotonic() > deadline:
                raise TimeoutError("the data channel did not open")
            await asyncio.sleep(0.02)

    def _on_message(self, message: Any) -> None:
        try:
            event = json.loads(message)
        except ValueError:
            return
        self.received.events.append((time.monotonic(), event))
        if event.get("type") == "hello" and event.get("mouth_box") and self.box is None:
            x0, y0, x1, y1 = (int(v) for v in event["mouth_box"])
            self.box = (x0, y0, x1, y1)
        self._event_seen.set()

    def _on_track(self, track: Any) -> None:
        self._tasks.append(asyncio.ensure_future(self._consume(track)))

    async def _consume(self, track: Any) -> None:
        from aiortc.mediastreams import MediaStreamError

        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            now = time.monotonic()
            if track.kind == "audio":
                samples = frame.to_ndarray().astype(np.float32) / 32768.0
                self.received.audio.append((now, float(np.sqrt(np.mean(samples ** 2)))))
            elif self.decode_video:
                image = frame.to_ndarray(format="rgb24")
                self.received.frame_shape = image.shape
                if self.box is None:  # the server's hello names it; else find it once (MediaPipe)
                    self.box = await asyncio.to_thread(mouth_box, image)
                self.received.video.append((now, darkness(image, self.box)))
                self.received.last_frame = image
            else:
                self.received.video.append((now, 0.0))

    # -- driving ------------------------------------------------------------------------

    def say(self, samples_16k: np.ndarray) -> None:
        """Queue speech (16 kHz float32) on the microphone; it goes out in real time."""
        self.mic.queue(np.asarray(samples_16k, np.float32))

    def send(self, event: dict) -> None:
        self.channel.send(json.dumps(event))

    def events(self, kind: str) -> list[tuple[float, dict]]:
        return [(t, e) for t, e in self.received.events if e.get("type") == kind]

    async def wait_for(self, kind: str, timeout_s: float = 30.0, after: float = 0.0,
                       where: Any = None) -> tuple[float, dict]:
        """The first event of ``kind`` that arrived after ``after`` (monotonic) and matches ``where``."""
        deadline = time.monotonic() + timeout_s
        while True:
            for t, event in self.events(kind):
                if t >= after and (where is None or where(event)):
                    return t, event
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no {kind!r} event within {timeout_s} s; got "
                                   f"{[e.get('type') for _, e in self.received.events][-12:]}")
            self._event_seen.clear()
            try:
                await asyncio.wait_for(self._event_seen.wait(), timeout=min(left, 0.2))
            except asyncio.TimeoutError:
                pass

    def first_sound_after(self, after: float) -> Optional[float]:
        return next((t for t, rms in self.received.audio if t >= after and rms > SILENT_RMS), None)

    def silence_after(self, after: float, hold_s: float = 0.2) -> Optional[float]:
        """When the received audio went silent (and stayed so for ``hold_s``) after ``after``."""
        start: Optional[float] = None
        for t, rms in self.received.audio:
            if t < after:
                continue
            if rms <= SILENT_RMS:
                start = t if start is None else start
                if t - start >= hold_s:
                    return start
            else:
                start = None
        return None

    def mouth_moves_after(self, after: float) -> Optional[float]:
        """The arrival of the first frame after ``after`` whose mouth is clearly open
        (darker than any idle frame before ``after``, by a margin)."""
        idle = [d for t, d in self.received.video if after - 1.0 <= t < after]  # the second before: at rest
        if not idle:
            return None
        threshold = max(idle) + 0.02
        return next((t for t, d in self.received.video if t >= after and d > threshold), None)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        if self.pc is not None:
            await self.pc.close()
