"""Speech recognition: pocketsphinx on Piper speech, the OpenAI client against a fake server."""

from __future__ import annotations

import json
import socket
import threading
import time
import wave
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import BytesIO

import numpy as np
import pytest

from genhuman.errors import InputError
from genhuman.live.asr import (
    ASRError, OpenAITranscriber, SphinxRecognizer, clean_hypothesis, to_pcm16, transcriptions_endpoint,
)
from genhuman.media import load_audio
from genhuman.speech.tts import synthesize_to_file

SR = 16000
QUESTION = "what is the capital of france"


@pytest.fixture(scope="module")
def question(tmp_path_factory) -> np.ndarray:
    """The question spoken by Piper, at 16 kHz, with a little silence around it."""
    path = synthesize_to_file(QUESTION, tmp_path_factory.mktemp("tts") / "question.wav")
    speech = load_audio(path)
    return np.concatenate([np.zeros(int(0.3 * SR), np.float32), speech, np.zeros(int(0.5 * SR), np.float32)])


def word_error_rate(reference: str, hypothesis: str) -> float:
    """Levenshtein distance over words / reference words."""
    ref, hyp = reference.split(), hypothesis.split()
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        previous, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            previous, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, previous + (r != h))
    return row[-1] / len(ref)


@pytest.fixture(scope="module")
def recognizer() -> SphinxRecognizer:
    """One loaded decoder for the tests that do not look inside it (loading costs ~0.5 s)."""
    shared = SphinxRecognizer()
    shared.load()
    return shared


def test_word_error_rate_counts_edits():
    assert word_error_rate("a b c d", "a b c d") == 0.0
    assert word_error_rate("a b c d", "a x c") == 0.5  # one substitution, one deletion


class CountingDecoder:
    """A pocketsphinx decoder that counts hyp() calls."""

    def __init__(self, decoder):
        self.decoder, self.hyps = decoder, 0

    def hyp(self):
        self.hyps += 1
        return self.decoder.hyp()

    def __getattr__(self, name):
        return getattr(self.decoder, name)


def recognise(recognizer: SphinxRecognizer, wave: np.ndarray, chunk: int = 320):
    """(partials in order, final text, push seconds, finish seconds); the seconds are this
    thread's CPU time, which other work on the machine does not inflate."""
    recognizer.start()
    partials, pushing = [], 0.0
    for first in range(0, len(wave), chunk):
        started = time.thread_time()
        partial = recognizer.push(wave[first:first + chunk])
        pushing += time.thread_time() - started
        if partial is not None:
            partials.append(partial)
    started = time.thread_time()
    text = recognizer.finish()
    return partials, text, pushing, time.thread_time() - started


def test_sphinx_recognises_the_question_with_partials_on_the_way(question):
    recognizer = SphinxRecognizer()
    recognizer.load()
    counter = recognizer._decoder = CountingDecoder(recognizer._decoder)
    partials, text, pushing, finishing = recognise(recognizer, question)
    assert word_error_rate(QUESTION, text) <= 1 / 3
    assert len(partials) >= 2 and partials[0] != partials[-1]  # they grow while the user talks
    assert all(a != b for a, b in zip(partials, partials[1:]))  # only changes are reported
    assert word_error_rate(QUESTION, partials[-1]) <= 0.5
    seconds = len(question) / SR
    assert counter.hyps <= int(seconds / 0.25) + 2  # at most one partial per 0.25 s, and the final
    # Measured on an idle core: ~0.3 x real time, finish ~0.02 s (0.1-0.4 s with second_pass).
    assert pushing / seconds < 0.6 and finishing < 0.2


def test_the_chunk_size_does_not_change_the_final_text(recognizer, question):
    texts = {recognise(recognizer, question, chunk)[1] for chunk in (320, 4000)}
    assert len(texts) == 1 and word_error_rate(QUESTION, texts.pop()) <= 1 / 3


def test_start_drops_an_unfinished_utterance(recognizer, question):
    recognizer.start()
    recognizer.push(question[: len(question) // 2])
    _, text, _, _ = recognise(recognizer, question)  # start() again, the whole question
    assert word_error_rate(QUESTION, text) <= 1 / 3
    assert recognizer.finish() == ""  # no utterance open any more


def test_silence_gives_no_text(recognizer):
    assert SphinxRecognizer().finish() == ""  # never started
    partials, text, _, _ = recognise(recognizer, np.zeros(SR, np.float32))
    assert partials == [] and text == ""


def test_clean_hypothesis_keeps_words_only():
    assert clean_hypothesis("<s> what(2) [NOISE] is <sil> +BREATH+ the </s>") == "what is the"
    assert clean_hypothesis("") == ""


def test_to_pcm16_scales_and_clips():
    np.testing.assert_array_equal(to_pcm16(np.array([0.0, 0.5, -1.0, 2.0], np.float32)),
                                  np.array([0, 16383, -32767, 32767], "<i2"))


# -- OpenAITranscriber against a fake server --------------------------------------------------------

class FakeTranscriptionServer:
    """A stdlib HTTP server answering POSTs with ``reply`` (status, body), recording each request."""

    def __init__(self, status: int = 200, body: bytes = b'{"text": " Paris  is the capital. "}',
                 delay_s: float = 0.0):
        self.requests: list[dict] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                data = self.rfile.read(int(self.headers["Content-Length"]))
                fake.requests.append({"path": self.path, "headers": dict(self.headers), "body": data})
                time.sleep(delay_s)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True).start()

    def form(self, index: int = 0) -> dict[str, tuple[str | None, bytes]]:
        """The multipart fields of a request: name -> (filename, content)."""
        request = self.requests[index]
        head = f"Content-Type: {request['headers']['Content-Type']}\r\n\r\n".encode()
        message = BytesParser(policy=HTTP).parsebytes(head + request["body"])
        assert message.is_multipart()
        return {part.get_param("name", header="content-disposition"): (part.get_filename(), part.get_content())
                for part in message.iter_parts()}

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake_server():
    servers: list[FakeTranscriptionServer] = []

    def make(**reply) -> FakeTranscriptionServer:
        servers.append(FakeTranscriptionServer(**reply))
        return servers[-1]

    yield make
    for server in servers:
        server.close()


def test_openai_transcriber_posts_the_turn_as_a_wav(fake_server):
    server = fake_server()
    transcriber = OpenAITranscriber(server.url + "/v1/", model="tiny.en", api_key="secret")
    audio = np.sin(np.arange(8000) / 5.0).astype(np.float32) * 0.5
    transcriber.start()
    assert transcriber.push(audio[:3000]) is None and transcriber.push(audio[3000:]) is None
    assert transcriber.finish() == "Paris is the capital."
    request = server.requests[0]
    assert request["path"] == "/v1/audio/transcriptions"
    assert request["headers"]["Authorization"] == "Bearer secret"
    form = server.form()
    assert form["model"] == (None, "tiny.en") and form["response_format"] == (None, "json")
    filename, content = form["file"]
    assert filename == "speech.wav"
    with wave.open(BytesIO(content)) as reader:
        assert (reader.getframerate(), reader.getnchannels(), reader.getsampwidth()) == (SR, 1, 2)
        samples = np.frombuffer(reader.readframes(reader.getnframes()), "<i2")
    np.testing.assert_array_equal(samples, to_pcm16(audio))


def test_openai_transcriber_sends_nothing_for_an_empty_turn(fake_server):
    server = fake_server()
    transcriber = OpenAITranscriber(server.url)
    transcriber.start()
    assert transcriber.finish() == "" and server.requests == []
    transcriber.push(np.zeros(1600, np.float32))
    transcriber.start()  # a new turn forgets the old audio
    transcriber.push(np.zeros(800, np.float32))
    transcriber.finish()
    with wave.open(BytesIO(server.form()["file"][1])) as reader:
        assert reader.getnframes() == 800
    assert "Authorization" not in server.requests[0]["headers"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_refused_connection_is_a_quick_clear_error():
    transcriber = OpenAITranscriber(f"http://127.0.0.1:{free_port()}")
    transcriber.push(np.zeros(1600, np.float32))
    started = time.perf_counter()
    with pytest.raises(ASRError, match=r"^could not reach the transcription server at http://127\.0\.0\.1:\d+: "
                                       r"connection refused \(is it running\?\)$"):
        transcriber.finish()
    assert time.perf_counter() - started < 2.0


@pytest.mark.parametrize("reply, message", [
    ({"status": 500, "body": b'{"error": {"message": "model not loaded"}}'}, r"answered HTTP 500: model not loaded$"),
    ({"status": 404, "body": b"Not Found"}, r"answered HTTP 404: Not Found$"),
    ({"body": b"<html>hello</html>"}, r"did not answer with JSON$"),
    ({"body": json.dumps({"transcript": "hi"}).encode()}, r'sent no "text" in its answer$'),
])
def test_bad_answers_are_one_sentence_errors(fake_server, reply, message):
    transcriber = OpenAITranscriber(fake_server(**reply).url)
    transcriber.push(np.zeros(1600, np.float32))
    with pytest.raises(ASRError, match=message):
        transcriber.finish()


def test_a_slow_server_times_out(fake_server):
    transcriber = OpenAITranscriber(fake_server(delay_s=1.5).url, timeout_s=0.3)
    transcriber.push(np.zeros(1600, np.float32))
    started = time.perf_counter()
    with pytest.raises(ASRError, match=r"did not answer within 0\.3 s$"):
        transcriber.finish()
    assert time.perf_counter() - started < 1.2


@pytest.mark.parametrize("url, endpoint", [
    ("http://host:8000", "http://host:8000/v1/audio/transcriptions"),
    ("http://host:8000/v1", "http://host:8000/v1/audio/transcriptions"),
    ("https://api.example.com/v1/", "https://api.example.com/v1/audio/transcriptions"),
    ("http://host/v1/audio/transcriptions", "http://host/v1/audio/transcriptions"),
])
def test_transcriptions_endpoint(url, endpoint):
    assert transcriptions_endpoint(url) == endpoint


def test_a_url_without_http_is_refused():
    with pytest.raises(InputError, match="must start with http:// or https://"):
        OpenAITranscriber("localhost:8000")
