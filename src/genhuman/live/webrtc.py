"""WebRTC transport (aiortc) for one conversation.

The browser's microphone comes up as Opus, is decoded by aiortc and resampled to 16 kHz for
:meth:`Conversation.hear`. The avatar goes down as H.264 video and Opus audio made from the
same ticks: tick ``k`` is video frame ``k`` (pts ``k / fps``) and audio samples
``k * 48000 / fps`` on, so sound and picture share one clock by construction and cannot
drift apart. A data channel named "events" carries the page's JSON messages both ways.
The media clock paces ticks at ``fps`` against the event loop's clock; a tick is rendered on
the ``media`` executor so the loop never waits on a render.
"""

from __future__ import annotations

import asyncio
import fractions
import json
import logging
import os
from collections import deque
from concurrent.futures import Executor
from typing import Any, Callable, Optional

import numpy as np

log = logging.getLogger(__name__)

OUT_RATE = 48000  # WebRTC's Opus clock
VIDEO_CLOCK = 90000  # RTP's video clock
AUDIO_PACKET = 960  # 20 ms at 48 kHz: one Opus frame
QUEUE_FRAMES = 8  # frames a track holds when its sender falls behind (older ones are dropped)
RESYNC_S = 0.5  # a media clock this far behind (a stalled machine) skips ahead instead of rushing


def _track_class():
    from aiortc import MediaStreamTrack

    class QueuedTrack(MediaStreamTrack):
        """A track whose frames are pushed by the media clock and pulled by aiortc's sender."""

        def __init__(self, kind: str) -> None:
            super().__init__()
            self.kind = kind
            self._frames: deque = deque(maxlen=QUEUE_FRAMES * (2 if kind == "audio" else 1))
            self._ready = asyncio.Event()

        def push(self, frame: Any) -> None:
            self._frames.append(frame)
            self._ready.set()

        async def recv(self) -> Any:
            from aiortc.mediastreams import MediaStreamError

            while not self._frames:
                if self.readyState != "live":
                    raise MediaStreamError
                self._ready.clear()
                await self._ready.wait()
            return self._frames.popleft()

        def stop(self) -> None:
            super().stop()
            self._ready.set()

    return QueuedTrack


class Upsampler:
    """16 kHz float32 blocks -> 20 ms 48 kHz s16 mono AudioFrames, stateful (no seams)."""

    def __init__(self) -> None:
        import av

        self._resampler = av.AudioResampler(format="s16", layout="mono", rate=OUT_RATE)
        self._pending = np.zeros(0, np.int16)
        self._pts = 0

    def frames(self, samples: np.ndarray) -> list:
        import av

        block = av.AudioFrame.from_ndarray(np.asarray(samples, np.float32).reshape(1, -1), format="flt",
                                           layout="mono")
        block.sample_rate = 16000
        out = [f.to_ndarray().reshape(-1) for f in self._resampler.resample(block)]
        self._pending = np.concatenate([self._pending, *out]) if out else self._pending
        frames = []
        while len(self._pending) >= AUDIO_PACKET:
            chunk, self._pending = self._pending[:AUDIO_PACKET], self._pending[AUDIO_PACKET:]
            frame = av.AudioFrame.from_ndarray(chunk.reshape(1, -1), format="s16", layout="mono")
            frame.sample_rate = OUT_RATE
            frame.pts = self._pts
            frame.time_base = fractions.Fraction(1, OUT_RATE)
            self._pts += AUDIO_PACKET
            frames.append(frame)
        return frames


class Downsampler:
    """aiortc's decoded microphone frames (48 kHz, any layout) -> 16 kHz mono float32.

    Channels are averaged here: FFmpeg's stereo-to-mono mix adds them at -3 dB each, which
    makes a mono microphone (Opus decodes it as two equal channels) 3 dB louder."""

    def __init__(self) -> None:
        import av

        self._resampler = av.AudioResampler(format="flt", layout="mono", rate=16000)

    def samples(self, frame: Any) -> np.ndarray:
        import av

        data = frame.to_ndarray().astype(np.float32)
        channels = len(frame.layout.channels)
        if frame.format.name.startswith("s16"):
            data /= 32768.0
        mono = data.mean(axis=0) if frame.format.is_planar else data.reshape(-1, channels).mean(axis=1)
        block = av.AudioFrame.from_ndarray(mono.reshape(1, -1).astype(np.float32), format="flt", layout="mono")
        block.sample_rate = frame.sample_rate
        out = [f.to_ndarray().reshape(-1) for f in self._resampler.resample(block)]
        return np.concatenate(out).astype(np.float32) if out else np.zeros(0, np.float32)


H264_PRESET = os.environ.get("GENHUMAN_H264_PRESET", "veryfast")  # aiortc leaves libx264 at "medium"


class _PresetCodec:
    """A libx264 context whose ``options`` always include our preset (aiortc sets its own)."""

    def __init__(self, codec: Any) -> None:
        object.__setattr__(self, "_codec", codec)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._codec, name)

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "options" and H264_PRESET:
            value = {"preset": H264_PRESET, **dict(value)}
        setattr(self._codec, name, value)


def use_fast_h264() -> None:
    """Make aiortc's H.264 encoder use :data:`H264_PRESET` (process-wide: the live server is
    this process's only WebRTC user). Its encoder makes its libx264 context lazily and may
    remake it when the bitrate changes, so the context is wrapped on every assignment."""
    import aiortc.codecs as codecs
    from aiortc.codecs.h264 import H264Encoder

    if getattr(codecs.H264Encoder, "genhuman_preset", False):
        return

    class PresetH264Encoder(H264Encoder):
        genhuman_preset = True

        def __setattr__(self, name: str, value: Any) -> None:
            if name == "codec" and value is not None and not isinstance(value, _PresetCodec):
                value = _PresetCodec(value)
            super().__setattr__(name, value)

    codecs.H264Encoder = PresetH264Encoder  # type: ignore[misc]  # get_encoder() reads the name per call


def prefer_h264(transceiver: Any) -> None:
    """Answer video with H.264 (browsers list VP8 first; libx264 is the cheaper encoder)."""
    from aiortc import RTCRtpSender

    h264 = [c for c in RTCRtpSender.getCapabilities("video").codecs
            if c.mimeType.lower() in ("video/h264", "video/rtx")]
    if h264:
        transceiver.setCodecPreferences(h264)


def even_size(image: np.ndarray) -> np.ndarray:
    """H.264 4:2:0 needs even sides: drop a last odd row/column."""
    h, w = image.shape[:2]
    return image[: h - h % 2, : w - w % 2]


class LiveConnection:
    """One browser: its RTCPeerConnection, the media clock, the microphone and the data channel."""

    def __init__(self, conversation, pc, media: Executor, fps: float, on_closed: Callable[[], Any]):
        use_fast_h264()
        QueuedTrack = _track_class()
        self.conversation = conversation
        self.pc = pc
        self.media = media
        self.fps = float(fps)
        self.video = QueuedTrack("video")
        self.audio = QueuedTrack("audio")
        self._upsampler = Upsampler()
        self._channel: Any = None
        self._early: deque = deque(maxlen=32)  # events sent before the channel opened
        self._tasks: set[asyncio.Task] = set()
        self._on_closed = on_closed
        self._closed = False
        self._loop = asyncio.get_running_loop()
        self.ticks = 0
        self.late_ticks = 0
        pc.on("track", self._on_track)
        pc.on("datachannel", self._on_datachannel)
        pc.on("connectionstatechange", self._on_state)

    # -- set-up -------------------------------------------------------------------------

    async def answer(self, offer_sdp: str) -> str:
        from aiortc import RTCSessionDescription

        # Our transceivers exist before the offer is applied, so the offer's m-lines take them
        # (with their directions and codec preferences) instead of new receive-only ones.
        self.pc.addTransceiver(self.audio, direction="sendrecv")  # the microphone comes up here
        video = self.pc.addTransceiver(self.video, direction="sendonly")
        if "h264/90000" in offer_sdp.lower():
            prefer_h264(video)
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        self._spawn(self._clock())
        return self.pc.localDescription.sdp

    def _spawn(self, coroutine) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _on_track(self, track) -> None:
        if track.kind == "audio":
            self._spawn(self._listen(track))

    def _on_datachannel(self, channel) -> None:
        self._channel = channel

        @channel.on("message")
        def on_message(message) -> None:
            self._spawn(self._handle(message))

        if channel.readyState == "open":
            self._flush()
        else:
            channel.on("open", self._flush)

    async def _on_state(self) -> None:
        state = self.pc.connectionState
        log.info("live: connection %s", state)
        if state in ("failed", "closed"):
            await self.close()
        elif state == "disconnected":  # often a blip: give ICE a few seconds to come back
            await asyncio.sleep(5.0)
            if self.pc.connectionState in ("disconnected", "failed"):
                await self.close()

    # -- events -------------------------------------------------------------------------

    def emit(self, event: dict) -> None:
        """Thread-safe: queue an event for the page."""
        if not self._closed:
            try:
                self._loop.call_soon_threadsafe(self._send, event)
            except RuntimeError:  # the loop is gone (shutdown)
                pass

    def _send(self, event: dict) -> None:
        channel = self._channel
        if channel is not None and channel.readyState == "open":
            channel.send(json.dumps(event))
        else:
            self._early.append(event)

    def _flush(self) -> None:
        while self._early and self._channel is not None and self._channel.readyState == "open":
            self._channel.send(json.dumps(self._early.popleft()))

    async def _handle(self, message: Any) -> None:
        from genhuman.errors import InputError

        try:
            event = json.loads(message) if isinstance(message, str) and len(message) < 8192 else None
        except ValueError:
            event = None
        if not isinstance(event, dict):
            self._send({"type": "error", "message": "messages must be JSON objects under 8 KB"})
            return
        kind = event.get("type")
        try:
            if kind == "text":
                await self._loop.run_in_executor(self.media, self.conversation.type_text, event.get("text"))
            elif kind == "draft":  # the text box as it is being typed
                self.conversation.draft(event.get("text"))
            elif kind == "mute":
                self.conversation.mute(bool(event.get("muted")))
            elif kind == "ping":
                self._send({"type": "pong", "t": event.get("t")})
            else:
                self._send({"type": "error", "message": f"unknown message type {str(kind)[:40]!r}"})
        except InputError as exc:
            self._send({"type": "error", "message": str(exc)})

    # -- media --------------------------------------------------------------------------

    async def _clock(self) -> None:
        import av

        loop = self._loop
        start = loop.time()
        k = 0
        try:
            while not self._closed:
                tick = await loop.run_in_executor(self.media, self.conversation.tick)
                frame = av.VideoFrame.from_ndarray(even_size(tick.image), format="rgb24")
                frame.pts = int(round(k * VIDEO_CLOCK / self.fps))
                frame.time_base = fractions.Fraction(1, VIDEO_CLOCK)
                self.video.push(frame)
                for packet in self._upsampler.frames(tick.audio):
                    self.audio.push(packet)
                k += 1
                self.ticks = k
                delay = start + k / self.fps - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                else:
                    self.late_ticks += 1
                    if delay < -RESYNC_S:  # fell far behind: carry on from now (timestamps stay by index)
                        start = loop.time() - k / self.fps
                    await asyncio.sleep(0)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("live: the media clock stopped")
            await self.close()

    async def _listen(self, track) -> None:
        from aiortc.mediastreams import MediaStreamError

        downsampler = Downsampler()
        pending: list[np.ndarray] = []
        try:
            while not self._closed:
                try:
                    frame = await track.recv()
                except MediaStreamError:
                    break
                pending.append(downsampler.samples(frame))
                if sum(len(p) for p in pending) >= 640:  # 40 ms per trip to the executor
                    samples = np.concatenate(pending)
                    pending = []
                    await self._loop.run_in_executor(self.media, self.conversation.hear, samples)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("live: the microphone stream stopped")

    # -- the end ------------------------------------------------------------------------

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.conversation.close()
        current = asyncio.current_task()
        tasks = [t for t in self._tasks if t is not current]
        for task in tasks:
            task.cancel()
        for task in tasks:
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass
        self._tasks.clear()
        self.video.stop()
        self.audio.stop()
        try:
            await self.pc.close()
        except Exception:  # a half-open connection: nothing more to free
            log.debug("live: closing the peer connection failed", exc_info=True)
        result = self._on_closed()
        if asyncio.iscoroutine(result):
            await result


def ice_configuration(urls: list[str], username: Optional[str] = None, credential: Optional[str] = None):
    """aiortc's RTCConfiguration for ``--ice-server`` URLs (stun:/turn:), none on loopback."""
    from aiortc import RTCConfiguration, RTCIceServer

    return RTCConfiguration(iceServers=[RTCIceServer(urls=u, username=username if u.startswith("turn") else None,
                                                     credential=credential if u.startswith("turn") else None)
                                        for u in urls])
