"""Issue 9, item 2: 1,000 mutated pose files and 200 mutated checkpoints, made from valid ones
by byte flips, truncation and forged opcodes. Each loads or is refused with one InputError
line; none crashes, hangs (per-file deadline) or runs code (a canary file never appears).
The batches run in a subprocess, so a segfault is a counted result, not a dead test run;
the mutations are seeded, so a failure names a file that can be made again."""

from __future__ import annotations

import pytest

from tests.fuzz.harness import pose_cases, run_batch, weight_cases

BATCHES = [  # kind, files, seed
    ("pose_v2", 600, 1),
    ("pose_v1", 400, 2),
    ("weights", 200, 3),  # .pth (zip) / .bin (legacy) / .safetensors: 170 of the 200
    ("whisper", 200, 3),  # OpenAI whisper .pt (zip): the other 30
]


def _cases(kind, count, seed, workdir, canary):
    if kind in ("pose_v2", "pose_v1"):
        return pose_cases(kind, count, seed, workdir, canary)
    cases = weight_cases(count, seed, workdir, canary)  # the same 200 for both kinds; each takes its part
    return [p for p in cases if (p.suffix == ".pt") == (kind == "whisper")]


@pytest.mark.timeout(240)
@pytest.mark.parametrize("kind, count, seed", BATCHES, ids=[b[0] for b in BATCHES])
def test_every_mutated_file_loads_or_is_refused(tmp_path, kind, count, seed):
    canary = tmp_path / "canary"
    cases = _cases(kind, count, seed, tmp_path / "cases", canary)
    result = run_batch(kind, cases, canary)
    print(f"{kind}: {result.summary()} in {result.seconds:.1f} s")
    assert result.failures == []
    assert result.tried == len(cases) == result.counts["loaded"] + result.counts["refused"]
    assert len(cases) == {"weights": 170, "whisper": 30}.get(kind, count)
    assert not canary.exists()
    # Both outcomes occur (a harness that refuses everything, or loads everything, tests nothing),
    # and no forged pickle is ever accepted.
    assert result.counts["loaded"] > 0 and result.counts["refused"] > len(cases) // 2
    forged_loaded = sum(n for (mutation, outcome), n in result.by_mutation.items()
                        if outcome == "loaded" and mutation.endswith("forged"))
    assert forged_loaded == 0


def test_the_harness_sees_crashes_hangs_and_code_runs(tmp_path, monkeypatch):
    """The harness itself: a worker that segfaults, hangs or runs a pickle's code is counted so."""
    import tests.fuzz.harness as harness

    canary = tmp_path / "canary"
    worker = tmp_path / "worker.py"
    worker.write_text(
        "import ctypes, json, os, pickle, sys, time\n"
        "print(json.dumps({'ready': True}), flush=True)\n"
        "for line in sys.stdin:\n"
        "    path = line.strip(); print(json.dumps({'start': path}), flush=True)\n"
        "    name = os.path.basename(path)\n"
        "    if name == 'crash': ctypes.string_at(0)\n"
        "    if name == 'hang': time.sleep(60)\n"
        "    if name == 'code': pickle.loads(open(path, 'rb').read())\n"
        f"    outcome = 'ran_code' if os.path.exists({str(canary)!r}) else 'loaded'\n"
        "    print(json.dumps({'path': path, 'outcome': outcome, 'detail': ''}), flush=True)\n")
    monkeypatch.setattr(harness, "WORKER", worker)
    files = []
    for name in ("ok1", "crash", "ok2", "hang", "code", "ok3"):
        forged = b"\x80\x02" + harness.forged_payloads(canary)[0] + b"."  # posix.system("touch canary")
        (tmp_path / name).write_bytes(forged if name == "code" else b"")
        files.append(tmp_path / name)
    result = run_batch("pose_v2", files, canary, per_file_s=1.0, start_s=30.0)
    assert result.counts == {"loaded": 2, "crashed": 1, "hung": 1, "ran_code": 2}  # code, and ok3 after it
    assert [f.split()[0] for f in result.failures] == ["crashed", "hung", "ran_code", "ran_code"]
