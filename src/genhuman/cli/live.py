"""``genhuman live IMAGE``: talk to a portrait in the browser.

Starts the server with ``/live`` on that portrait and opens the page. The conversation
options (``--llm-url``, ``--silence``, ``--persona`` ...) come from
:class:`genhuman.live.options.LiveOptions`; ``genhuman serve`` takes the same ones.
"""

from __future__ import annotations

import argparse
import threading
import webbrowser
from pathlib import Path

from genhuman.cli.common import int_range


def add_live_arguments(parser: argparse.ArgumentParser) -> None:
    """The live options, shared by ``genhuman live`` and ``genhuman serve``."""
    from genhuman.cli.animate import add_options
    from genhuman.live.options import LiveOptions

    group = parser.add_argument_group("live conversation (/live)")
    add_options(parser, LiveOptions, group)
    group.add_argument("--ice-server", action="append", default=[], metavar="URL", dest="ice_servers",
                       help="a STUN/TURN server for browsers beyond this network, e.g. stun:stun.example.org:3478 "
                            "or turn:turn.example.org:3478 (repeatable; none is needed on loopback or a LAN)")
    group.add_argument("--ice-username", default=None, help="user name for the turn: servers")
    group.add_argument("--ice-credential", default=None, help="password for the turn: servers")


def live_options(args: argparse.Namespace):
    from genhuman.live.options import LiveOptions
    from genhuman.request import request_options

    given = {name: getattr(args, name) for name, _ in request_options(LiveOptions)
             if getattr(args, name, None) is not None}
    options = LiveOptions(**given)
    if options.voice is not None:  # a bad voice file fails now, not in the first conversation
        from genhuman.live.voice import voice_files

        voice_files(options.voice)
    return options


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("live", help="talk to a portrait in the browser (WebRTC, real time)",
                       description="Serve /live for IMAGE (and the whole HTTP API) and open it in the browser: "
                                   "speak or type, and the portrait answers, lip-synced. Embedded defaults: "
                                   "silero VAD, pocketsphinx (English), SmolLM2-135M, Piper (--voice), the lite "
                                   "engine.")
    p.add_argument("image", type=Path, nargs="+", help="portrait image(s) or folder(s) of portraits")
    p.add_argument("--engine", default="lite", choices=["lite"], help="the avatar engine (lite: real time on a CPU)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1; others need a token)")
    p.add_argument("--port", type=int_range(1, 65535), default=8000, help="port (default 8000)")
    p.add_argument("--token", default=None, help="bearer token clients must send (or env GENHUMAN_TOKEN)")
    p.add_argument("--data-dir", type=Path, default=Path("genhuman-data"),
                   help="folder for the server's database and files (default ./genhuman-data)")
    p.add_argument("--no-browser", action="store_true", help="do not open the page")
    add_live_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from genhuman.cli.serve import KEEP_ALIVE_SECONDS
    from genhuman.live.sessions import find_portraits
    from genhuman.server.app import create_app
    from genhuman.server.settings import ServerSettings

    import torch

    # The embedded language model is memory-bound: a second thread does not make a token
    # faster, and it takes the core the renders, encoders and Piper need (measured: the
    # first answer 2x later with 2 threads on 2 cores). Only the language model uses torch here.
    torch.set_num_threads(1)
    portraits = find_portraits(args.image)  # a missing file: one line, exit 2
    if not portraits:
        from genhuman.errors import InputError

        raise InputError("no portrait images found in " + ", ".join(repr(str(p)) for p in args.image))
    settings = ServerSettings(host=args.host, port=args.port, data_dir=args.data_dir, token=args.token,
                              live=live_options(args), live_portraits=list(args.image),
                              ice_servers=args.ice_servers, ice_username=args.ice_username,
                              ice_credential=args.ice_credential, engines=["lite"])
    app = create_app(settings)
    url = f"http://{'127.0.0.1' if args.host in ('0.0.0.0', '::') else args.host}:{args.port}/live"
    print(f"genhuman: live on {url} (portraits: {', '.join(portraits)})", flush=True)
    if not args.no_browser:
        threading.Timer(1.0, webbrowser.open, args=(url,)).start()
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", timeout_graceful_shutdown=5,
                timeout_keep_alive=KEEP_ALIVE_SECONDS)
    return 0
