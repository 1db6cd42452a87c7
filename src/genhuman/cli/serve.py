"""``genhuman serve``: the HTTP API, job queue and web page."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from genhuman.cli.common import float_range, int_range

KEEP_ALIVE_SECONDS = 5


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="run the HTTP API and web page",
                       description="Serve the HTTP API (/v1, docs at /docs) and the web page (/). "
                                   "Jobs persist in a database and survive restarts.")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1; others need a token)")
    p.add_argument("--port", type=int_range(1, 65535), default=8000, help="port (default 8000)")
    p.add_argument("--workers", type=int_range(1, 64), default=None,
                   help="engine workers (default: one per GPU, or one on CPU)")
    p.add_argument("--data-dir", type=Path, default=Path("genhuman-data"),
                   help="folder for uploads, results and the SQLite database (default ./genhuman-data)")
    p.add_argument("--db", default=None, help="SQLAlchemy database URL (default: SQLite in --data-dir)")
    p.add_argument("--token", default=None, help="bearer token clients must send (or env GENHUMAN_TOKEN)")
    p.add_argument("--max-upload-mb", type=float_range(0.01, 4096), default=50.0,
                   help="largest accepted upload per file, MB (default 50)")
    p.add_argument("--max-queue", type=int_range(1, 100000), default=32,
                   help="queued jobs beyond this are refused with 429 (default 32)")
    p.add_argument("--max-attempts", type=int_range(1, 100), default=2,
                   help="runs of a job interrupted by a crash before it is failed (default 2)")
    p.add_argument("--cors-origin", action="append", default=[], metavar="ORIGIN",
                   help="allow browser calls from this origin (repeatable; default: CORS off)")
    p.add_argument("--engine", action="append", default=None, metavar="NAME", dest="engines",
                   help="offer only this engine (repeatable; default: all)")
    p.add_argument("--weights", action="append", default=[], metavar="ENGINE=DIR", type=engine_weights,
                   help="weights folder of a diffusion engine, e.g. echomimic=weights/echomimic (repeatable); "
                        "diffusion engines without weights are listed as unavailable")
    p.add_argument("--allowed-host", action="append", default=[], metavar="NAME", dest="allowed_hosts",
                   help="a host name the server answers to besides its own address and localhost "
                        "(repeatable; without a token other Host headers are refused, against DNS rebinding)")
    p.add_argument("--avatar-cache", type=int_range(0, 4096), default=16, metavar="N",
                   help="prepared avatars kept in memory per worker, so a repeated portrait skips its "
                        "preparation (default 16; 0 = off)")
    p.add_argument("--avatar-cache-disk", type=int_range(0, 100000), default=0, metavar="N",
                   help="also keep up to N prepared avatars under --data-dir/avatars, shared by the "
                        "workers and kept across restarts (default 0 = off)")
    p.add_argument("--client-token", action="append", default=[], metavar="TOKEN", dest="tokens",
                   help="a further client token (repeatable); each token owns the jobs made with it")
    p.add_argument("--admin-token", default=None,
                   help="a token that sees, cancels and deletes every job (or env GENHUMAN_ADMIN_TOKEN)")
    p.add_argument("--max-output-size", type=int_range(64, 4096), default=1024, metavar="PX",
                   help="longest side of the portrait the engines render; requests may ask smaller (default 1024)")
    p.add_argument("--max-image-mpx", type=float_range(0.01, 200), default=16.0, metavar="MPX",
                   help="largest decoded upload, megapixels, checked from the header first (default 16)")
    p.add_argument("--rate-limit", type=float_range(0, 100000), default=60.0, metavar="N",
                   help="job submissions per minute per client (token or address); 0 = off (default 60)")
    p.add_argument("--rate-burst", type=int_range(1, 100000), default=20, metavar="N",
                   help="submissions a client may make at once before --rate-limit applies (default 20)")
    p.add_argument("--validation-threads", type=int_range(1, 16), default=2, metavar="N",
                   help="threads that decode uploads, check faces and speak text (default 2)")
    p.add_argument("--body-timeout", type=float_range(1, 3600), default=60.0, metavar="S",
                   help="seconds a client may take to send a request body (default 60)")
    p.add_argument("--live-portrait", action="append", default=[], metavar="PATH", type=Path, dest="live_portraits",
                   help="an image or a folder of images offered on /live (repeatable; default: ./examples when "
                        "it exists; none: /live is off)")
    from genhuman.cli.live import add_live_arguments

    add_live_arguments(p)
    p.set_defaults(func=run)


def engine_weights(text: str) -> tuple[str, Path]:
    from genhuman.engines import ENGINES

    name, sep, folder = text.partition("=")
    if not sep or not folder:
        raise argparse.ArgumentTypeError(f"expected ENGINE=DIR, got {text!r}")
    if name not in ENGINES or name == "lite":
        raise argparse.ArgumentTypeError(f"{name!r} is not a diffusion engine; choose one of: "
                                         f"{', '.join(n for n in ENGINES if n != 'lite')}")
    return name, Path(folder)


def _default_portraits() -> list[Path]:
    examples = Path("examples")
    return [examples] if examples.is_dir() and any(examples.glob("*.png")) else []


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from genhuman.cli.live import live_options

    from genhuman.server.app import create_app
    from genhuman.server.settings import ServerSettings

    settings = ServerSettings(host=args.host, port=args.port, workers=args.workers, data_dir=args.data_dir,
                              db_url=args.db, token=args.token, max_upload_mb=args.max_upload_mb,
                              max_queue=args.max_queue, max_attempts=args.max_attempts,
                              cors_origins=args.cors_origin, engines=args.engines, weights=dict(args.weights),
                              avatar_cache=args.avatar_cache, avatar_cache_disk=args.avatar_cache_disk,
                              allowed_hosts=args.allowed_hosts, tokens=args.tokens, admin_token=args.admin_token,
                              max_output_size=args.max_output_size,
                              max_image_pixels=int(args.max_image_mpx * 1_000_000), rate_limit=args.rate_limit,
                              rate_burst=args.rate_burst, validation_threads=args.validation_threads,
                              body_timeout=args.body_timeout, live=live_options(args),
                              live_portraits=args.live_portraits or _default_portraits(),
                              # the language model (seconds of CPU) loads at start-up only when
                              # live portraits were asked for; else on the first live session
                              live_warm_up=bool(args.live_portraits),
                              ice_servers=args.ice_servers, ice_username=args.ice_username,
                              ice_credential=args.ice_credential)
    if args.engines:
        settings.default_engine = args.engines[0]
    app = create_app(settings)  # validates the settings (token on non-loopback hosts, ...)
    if logging.getLogger().level > logging.INFO:
        logging.getLogger("genhuman").setLevel(logging.INFO)
    print(f"genhuman: serving on http://{args.host}:{args.port} (data in {settings.data_dir.resolve()})", flush=True)
    # timeout_keep_alive: an idle connection is closed after 5 s (slow clients hold no slot)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", timeout_graceful_shutdown=5,
                timeout_keep_alive=KEEP_ALIVE_SECONDS)
    return 0
