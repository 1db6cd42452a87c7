"""Seeded mutations of valid pose and weights files, and a crash-proof way to load them.

Mutations: byte flips, truncation, and forged pickle opcodes (a GLOBAL that would create
the canary file, REDUCE on numpy classes, dtypes with cleared flags, BUILD with odd
states, huge shapes and sizes, deep nesting, memo bombs) spliced into the valid pickle at
an opcode boundary or standing alone. For zip checkpoints the pickle inside the archive
is mutated and the archive rebuilt, so the mutation gets past the zip checks.

:func:`run_batch` loads every file in a subprocess (``worker.py``) and restarts it after
a crash or a hang, so each file gets exactly one outcome.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import pickletools
import queue
import random
import struct
import subprocess
import sys
import threading
import time
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

WORKER = Path(__file__).with_name("worker.py")
REPO = Path(__file__).resolve().parents[2]


def _text(s: str) -> bytes:
    data = s.encode()
    return b"X" + struct.pack("<I", len(data)) + data


def _bytes(data: bytes) -> bytes:
    return (b"C" + bytes([len(data)]) if len(data) < 256 else b"B" + struct.pack("<I", len(data))) + data


_STATE_F8 = b"(K\x03" + _text("<") + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00t"


def _dtype(code: str, flags: int, order: str = "|") -> bytes:
    return (b"cnumpy\ndtype\n" + _text(code) + b"\x89\x88\x87R(K\x03" + _text(order)
            + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK" + bytes([flags]) + b"tb")


def _reconstruct(state: bytes) -> bytes:
    return b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85C\x01b\x87R" + state + b"b"


def forged_payloads(canary: Path) -> list[bytes]:
    """Opcode sequences that each push one object (or try to run code) on the unpickler's stack."""
    touch = f"touch {canary}"
    data16 = b"\x41" * 16
    deep = b"]" * 5000 + b"a" * 4999
    laughs = b"]K\x00a" + b"".join(b"p%d\n(g%d\ng%d\ng%d\ng%d\nl" % (i, i, i, i, i) for i in range(40))
    return [
        b"cposix\nsystem\n" + _text(touch) + b"\x85R",
        b"cos\nsystem\n" + _text(touch) + b"\x85R",
        b"cbuiltins\neval\n" + _text(f"__import__('os').system('{touch}')") + b"\x85R",
        b"cbuiltins\nexec\n" + _text(f"import os; os.system('{touch}')") + b"\x85R",
        b"\x8c\x05posix\x8c\x06system\x93" + _text(touch) + b"\x85R",  # STACK_GLOBAL
        b"(" + _text(touch) + b"ios\nsystem\n",  # INST
        b"(cos\nsystem\n" + _text(touch) + b"o",  # OBJ
        b"csubprocess\nPopen\n(" + _text("touch") + _text(str(canary)) + b"lR",
        b"cnumpy\ndtype\n" + _text("O8") + b"\x89\x88\x87R(K\x03" + _text("|")
        + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb",  # the dtype with cleared flags
        _dtype("f8", 63),
        _dtype("O8", 0),
        _dtype("V16", 0),
        _dtype("U4", 8, "<"),
        _reconstruct(b"(K\x01K\x02\x85" + _dtype("O8", 63) + b"\x89" + _bytes(data16) + b"t"),
        # the exploit: an object dtype with its flags cleared, and raw bytes read as pointers
        _reconstruct(b"(K\x01)" + _dtype("O8", 0) + b"\x89" + _bytes(data16[:8]) + b"t"),
        _reconstruct(b"(K\x01J\xff\xff\xff\x7fJ\xff\xff\xff\x7f\x86" + _dtype("f8", 0, "<") + b"\x89C\x00t"),
        _reconstruct(b"(K\x01K\x02\x85" + _dtype("f8", 0, "<") + b"\x89" + _bytes(data16[:8]) + b"t"),
        _reconstruct(b"N"),
        _reconstruct(b"]"),
        _reconstruct(b"}"),
        _reconstruct(b"(K\x01t"),
        b"cnumpy\nndarray\n(J\x00\x00\x00\x40\x85" + _text("f8") + b"tR",
        b"cnumpy.core.multiarray\nscalar\n" + _dtype("O8", 63) + _bytes(data16[:8]) + b"\x86R",
        b"cnumpy.core.multiarray\nscalar\n" + _dtype("f8", 0, "<") + _bytes(data16[:3]) + b"\x86R",
        b"cnumpy.core.numeric\n_frombuffer\n(" + _bytes(data16) + _dtype("f8", 0, "<")
        + b"J\x00\x00\x00\x40\x85" + _text("C") + b"tR",
        b"c_codecs\nencode\n" + _text("x") + _text("rot13") + b"\x86R",
        b"}" + _STATE_F8 + b"b",  # BUILD on a dict
        deep,
        laughs,
        b"\x8e" + struct.pack("<Q", 2**62),  # BINBYTES8 with no data
        b"\x8b" + struct.pack("<i", 2**31 - 1),  # LONG4 with no data
        b"\x95" + struct.pack("<Q", 2**62),  # FRAME
        b"P1\n",  # PERSID
        b"\x82\x01",  # EXT1
        b"L" + b"9" * 5000 + b"L\n",  # a 5000-digit LONG
        b"(" * 50000,  # 50000 MARKs
        b"g999999\n",  # a memo slot never set
    ]


def opcode_offsets(data: bytes) -> list[int]:
    """Where each opcode of the (first) pickle in ``data`` starts."""
    try:
        return [pos for _, _, pos in pickletools.genops(data) if pos is not None]
    except Exception:  # a pickle that pickletools cannot walk: splice anywhere
        return list(range(len(data)))


def mutate(valid: bytes, pickle_start: int, rng: random.Random, payloads: list[bytes]) -> tuple[str, bytes]:
    """One seeded mutation of ``valid``; the pickle stream starts at ``pickle_start``."""
    head, body = valid[:pickle_start], valid[pickle_start:]
    choice = rng.random()
    if choice < 0.3:  # byte flips
        data = bytearray(valid)
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] ^= rng.randint(1, 255)
        return "flip", bytes(data)
    if choice < 0.45:  # truncation
        return "truncate", valid[: rng.randrange(len(valid))]
    payload = rng.choice(payloads)
    if choice < 0.7:  # a forged pickle on its own
        return "forged", head + b"\x80\x02" + payload + b"."
    offsets = opcode_offsets(body)
    at = rng.choice(offsets) if offsets else 0
    if choice < 0.9:  # spliced in at an opcode boundary
        return "spliced", head + body[:at] + payload + body[at:]
    return "replaced", head + body[:at] + payload + b"."  # the rest of the stream replaced


# ---------------------------------------------------------------- valid files


def valid_pose_v2(path: Path) -> int:
    """A one-frame official V2 pose file; returns where its pickle starts."""
    sys.path.insert(0, str(REPO))
    from genhuman.pose.format import save_pose_dir
    from tests.pose.conftest import make_pose

    save_pose_dir(make_pose(1), path.parent)
    with open(path, "rb") as fh:
        np.lib.format.read_magic(fh)
        np.lib.format.read_array_header_1_0(fh)
        return fh.tell()


def valid_pose_v1(path: Path, protocol: int) -> int:
    """An official V1 ``{i}.pkl``: a pickled (478, 3) float array."""
    points = np.random.default_rng(protocol).uniform(0, 512, size=(478, 3)).astype(np.float32)
    path.write_bytes(pickle.dumps(points, protocol=protocol))
    return 0


def _zip_members(data: bytes) -> list[tuple[zipfile.ZipInfo, bytes]]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return [(info, archive.read(info)) for info in archive.infolist()]


def rezip(members: list[tuple[zipfile.ZipInfo, bytes]]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive:
        for info, content in members:
            archive.writestr(info.filename, content)
    return out.getvalue()


def mutate_zip_checkpoint(valid: bytes, rng: random.Random, payloads: list[bytes]) -> tuple[str, bytes]:
    """Mutate the pickle (or another record) inside a torch zip checkpoint and rebuild the archive."""
    members = _zip_members(valid)
    index = next(i for i, (info, _) in enumerate(members) if info.filename.endswith("data.pkl"))
    if rng.random() < 0.8:
        name, content = mutate(members[index][1], 0, rng, payloads)
        members[index] = (members[index][0], content)
        return f"zip-pkl-{name}", rezip(members)
    other = rng.randrange(len(members))
    info, content = members[other]
    cut = content[: rng.randrange(len(content))] if content else b"\xff"
    members[other] = (info, cut if rng.random() < 0.5 else content * rng.randint(2, 4))
    return "zip-record", rezip(members)


def mutate_safetensors(valid: bytes, rng: random.Random) -> tuple[str, bytes]:
    """Change the JSON header: shapes, offsets, dtypes, its declared length."""
    (length,) = struct.unpack("<Q", valid[:8])
    header = json.loads(valid[8:8 + length])
    body = valid[8 + length:]
    name = rng.choice([k for k in header if k != "__metadata__"])
    field_name = rng.choice(["shape", "data_offsets", "dtype", "length", "json"])
    if field_name == "shape":
        header[name]["shape"] = rng.choice([[2**40, 2**40], [-1], [0], ["x"], [2**63], []])
    elif field_name == "data_offsets":
        header[name]["data_offsets"] = rng.choice([[0, 2**40], [8, 4], [-1, 3], [0, len(body) + 64], [None]])
    elif field_name == "dtype":
        header[name]["dtype"] = rng.choice(["F64x", "BOOL", "U8", "", 7, "F8_E4M3"])
    encoded = json.dumps(header).encode()
    if field_name == "length":
        return "st-length", struct.pack("<Q", rng.choice([2**62, len(encoded) + 100, 0, 3])) + encoded + body
    if field_name == "json":
        encoded = encoded[: rng.randrange(len(encoded))]
    return f"st-{field_name}", struct.pack("<Q", len(encoded)) + encoded + body


# ---------------------------------------------------------------- cases


def _write_case(workdir: Path, index: int, mutation: str, name: str, data: bytes) -> Path:
    folder = workdir / f"{index:04d}-{mutation}"
    folder.mkdir(parents=True)
    (folder / name).write_bytes(data)
    return folder / name


def pose_cases(kind: str, count: int, seed: int, workdir: Path, canary: Path) -> list[Path]:
    """``count`` mutated official pose files (kind "pose_v2": ``0.npy`` dicts; "pose_v1": ``0.pkl`` arrays)."""
    rng = random.Random(seed)
    payloads = forged_payloads(canary)
    seeds = workdir / "valid"
    seeds.mkdir(parents=True)
    if kind == "pose_v2":
        start = valid_pose_v2(seeds / "0.npy")
        valids = [((seeds / "0.npy").read_bytes(), start, "0.npy")]
    else:
        valids = []
        for protocol in (2, 4, 5):
            valid_pose_v1(seeds / f"{protocol}.pkl", protocol)
            valids.append(((seeds / f"{protocol}.pkl").read_bytes(), 0, "0.pkl"))
        np.save(seeds / "0.npy", pickle.loads(valids[0][0]))  # V1 also reads plain (478, 3) .npy files
        valids.append(((seeds / "0.npy").read_bytes(), 0, "0.npy"))
    cases = []
    for i in range(count):
        valid, start, name = valids[i % len(valids)]
        mutation, data = mutate(valid, start, rng, payloads)
        cases.append(_write_case(workdir, i, mutation, name, data))
    return cases


def weight_cases(count: int, seed: int, workdir: Path, canary: Path) -> list[Path]:
    """``count`` mutated checkpoints: 40% zip .pth, 20% legacy .bin, 25% .safetensors, 15% whisper .pt."""
    import torch
    from safetensors.torch import save_file

    from genhuman.checkpoints.tiny import tiny_whisper_state

    rng = random.Random(seed)
    payloads = forged_payloads(canary)
    g = torch.Generator().manual_seed(seed)
    state = {"conv.weight": torch.randn(4, 3, 3, 3, generator=g), "conv.bias": torch.zeros(4),
             "steps": torch.arange(3), "half": torch.ones(5, dtype=torch.float16)}
    dims = dict(n_mels=4, n_audio_ctx=8, n_audio_state=8, n_audio_head=2, n_audio_layer=1,
                n_vocab=4, n_text_ctx=2, n_text_state=8, n_text_head=2, n_text_layer=0)
    buffers = {}
    for name, save in (("zip", lambda f: torch.save(state, f)),
                       ("legacy", lambda f: torch.save(state, f, _use_new_zipfile_serialization=False)),
                       ("whisper", lambda f: torch.save({"dims": dims, "model_state_dict": tiny_whisper_state(dims)},
                                                        f))):
        out = io.BytesIO()
        save(out)
        buffers[name] = out.getvalue()
    safetensors_file = workdir / "valid.safetensors"
    workdir.mkdir(parents=True, exist_ok=True)
    save_file(state, str(safetensors_file))
    buffers["safetensors"] = safetensors_file.read_bytes()
    plan = (["zip"] * 8 + ["legacy"] * 4 + ["safetensors"] * 5 + ["whisper"] * 3)
    names = {"zip": "w.pth", "legacy": "w.bin", "safetensors": "w.safetensors", "whisper": "tiny.pt"}
    cases = []
    for i in range(count):
        fmt = plan[i % len(plan)]
        valid = buffers[fmt]
        roll = rng.random()
        if fmt in ("zip", "whisper") and roll < 0.6:
            mutation, data = mutate_zip_checkpoint(valid, rng, payloads)
        elif fmt == "safetensors" and roll < 0.5:
            mutation, data = mutate_safetensors(valid, rng)
        elif fmt == "legacy" and roll < 0.5:
            offsets = opcode_offsets(valid)[1:]  # inside the first pickles (magic, protocol, sys_info)
            mutation, data = mutate(valid, 0, rng, payloads)
            if rng.random() < 0.5 and offsets:
                at = rng.choice(offsets)
                mutation, data = "legacy-spliced", valid[:at] + rng.choice(payloads) + valid[at:]
        else:
            mutation, data = mutate(valid, 0, rng, payloads)
        cases.append(_write_case(workdir, i, f"{fmt}-{mutation}", names[fmt], data))
    return cases


# ---------------------------------------------------------------- running


@dataclass
class Outcomes:
    counts: Counter = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)  # "outcome path detail" for every non-load/refuse
    by_mutation: Counter = field(default_factory=Counter)
    done: set = field(default_factory=set)  # paths with an outcome
    slowest: list = field(default_factory=list)  # (seconds, path) of loaded/refused files
    seconds: float = 0.0

    @property
    def tried(self) -> int:
        return sum(self.counts.values())

    def summary(self) -> str:
        c = self.counts
        return (f"tried {self.tried}, loaded {c['loaded']}, refused {c['refused']}, crashed {c['crashed']}, "
                f"hung {c['hung']}, ran code {c['ran_code']}, other errors {c['error']}")


def _reader(stream, lines: queue.Queue) -> None:
    for line in stream:
        lines.put(line)
    lines.put(None)


def run_batch(kind: str, paths: list[Path], canary: Path, per_file_s: float = 5.0,
              start_s: float = 60.0, src: Path | None = None) -> Outcomes:
    """Load every path in a worker subprocess; a crash or hang costs one file and a restart.
    ``src``: the ``genhuman`` source tree to test (default: this checkout's ``src``)."""
    result = Outcomes()
    began = time.monotonic()
    pending = list(paths)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(src or REPO / "src")}
    while pending:
        proc = subprocess.Popen([sys.executable, str(WORKER), kind, str(canary), str(per_file_s)],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                text=True, env=env)
        assert proc.stdin is not None and proc.stdout is not None
        lines: queue.Queue = queue.Queue()
        threading.Thread(target=_reader, args=(proc.stdout, lines), daemon=True).start()
        feeder = threading.Thread(target=_feed, args=(proc.stdin, pending), daemon=True)
        feeder.start()
        current: str | None = None
        deadline = start_s  # the first line waits for imports
        while True:
            try:
                line = lines.get(timeout=deadline)
            except queue.Empty:  # a hang the worker's own alarm could not break (C code)
                proc.kill()
                proc.wait()
                _record(result, current, "hung", "no answer from the worker")
                break
            if line is None:  # the worker died: a crash on the file in progress
                code = proc.wait()
                if current is not None:
                    _record(result, current, "crashed", f"exit status {code}")
                break
            message = json.loads(line)
            deadline = per_file_s * 3
            if "start" in message:
                current = message["start"]
            elif "path" in message:
                _record(result, message["path"], message["outcome"], message["detail"])
                result.slowest.append((message.get("seconds", 0.0), message["path"]))
                current = None
        left = [p for p in pending if str(p) not in result.done]
        if len(left) == len(pending):  # died between files: charge the next one, so the loop ends
            _record(result, str(left[0]), "crashed", "the worker died between files")
            left = left[1:]
        pending = left
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    result.seconds = time.monotonic() - began
    result.slowest = sorted(result.slowest, reverse=True)[:5]
    return result


def _feed(stdin, paths: list[Path]) -> None:
    try:
        for path in paths:
            stdin.write(f"{path}\n")
        stdin.close()
    except (BrokenPipeError, OSError):  # the worker died; the parent restarts it
        pass


def _record(result: Outcomes, path: str | None, outcome: str, detail: str) -> None:
    if path is None:
        return
    result.counts[outcome] += 1
    result.done.add(path)
    mutation = Path(path).parent.name.split("-", 1)[-1]
    result.by_mutation[(mutation, outcome)] += 1
    if outcome not in ("loaded", "refused"):
        result.failures.append(f"{outcome} {path} {detail}")
