"""Live conversation: talk to a portrait and it answers, lip-synced, in real time.

The parts, each usable alone: :mod:`~genhuman.live.turns` (voice activity and end of
turn), :mod:`~genhuman.live.asr` (speech recognition), :mod:`~genhuman.live.llm` (language
models and the sentence splitter), :mod:`~genhuman.live.voice` (Piper with its phoneme
timings), :mod:`~genhuman.live.avatar` (the always-alive avatar clock: one video frame and
40 ms of audio per tick), :mod:`~genhuman.live.conversation` (the turn loop with barge-in),
:mod:`~genhuman.live.webrtc` (the aiortc transport) and :mod:`~genhuman.live.sessions`
(the limit and cleanup). The server's ``/live`` routes are in
:mod:`genhuman.server.routes.live`.
"""
