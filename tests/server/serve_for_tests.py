"""``python serve_for_tests.py serve ...``: the genhuman CLI with the test-only fake engine
registered, for tests that run the server as a real process."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # makes `server.fake_engine` importable

from genhuman.cli import main  # noqa: E402
from genhuman.engines import ENGINES  # noqa: E402

ENGINES["fake"] = "server.fake_engine:FakeEngine"
sys.exit(main(sys.argv[1:]))
