"""The ``genhuman`` command. Each sub-command lives in its own module here and
exposes ``register(subparsers)``, which adds a parser whose ``func(args)`` does the work.

Errors: an :class:`~genhuman.errors.InputError` becomes one line on stderr and exit
code 2; no traceback unless ``--verbose``.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import logging
import os
import sys
from typing import NoReturn

from genhuman import __version__
from genhuman.paths import path_error
from genhuman.cli.signals import Terminated, signals_as_interrupts
from genhuman.cli.stderr import native_stderr_hidden
from genhuman.errors import GenHumanError

# Sub-command modules, in the order ``--help`` lists them.
COMMAND_MODULES = ["animate", "eval", "convert", "download", "pose", "upscale", "serve", "live",
                   "data", "train", "distill"]


# Packages of the optional extras (pyproject.toml): a command that needs a missing one
# says which extra to install instead of printing an internal error.
_EXTRA_OF = {
    **dict.fromkeys(["torch", "diffusers", "transformers", "safetensors", "huggingface_hub"], "diffusion"),
    **dict.fromkeys(["fastapi", "starlette", "uvicorn", "sqlalchemy", "multipart", "python_multipart",
                     "swagger_ui_bundle"], "server"),
    **dict.fromkeys(["aiortc", "aioice", "gguf", "accelerate", "onnx"], "live"),
}


class OneLineErrorParser(argparse.ArgumentParser):
    """Bad options give one line on stderr (exit 2), not the whole usage text."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineErrorParser(
        prog="genhuman",
        description="Generative digital humans: a portrait plus speech becomes a talking video.",
    )
    parser.add_argument("--version", action="version", version=f"genhuman {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging and full tracebacks")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"genhuman.cli.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"genhuman.cli.{name}":
                continue  # that command is not part of this build
            raise
        module.register(sub)
    return parser


def _size_unsized_terminal() -> None:
    """A terminal that reports a size of 0 x 0 (a pseudo-terminal nobody sized:
    ``script``, ``docker exec -t``, a pty opened by a program) makes tqdm draw nothing:
    it takes the bar to be below the last row. Give tqdm $COLUMNS x $LINES for such a
    terminal, else 80 x 24."""
    try:
        if not sys.stderr.isatty() or os.get_terminal_size(sys.stderr.fileno()).columns > 0:
            return
    except (OSError, ValueError, AttributeError):
        return
    for variable, name, default in (("TQDM_NCOLS", "COLUMNS", 80), ("TQDM_NROWS", "LINES", 24)):
        value = os.environ.get(name, "")
        size = int(value) if value.isdigit() and int(value) > 1 else default
        os.environ.setdefault(variable, str(size - 1))  # tqdm keeps the last column/row free


def main(argv: list[str] | None = None) -> int:
    _size_unsized_terminal()  # before anything imports tqdm: it reads TQDM_* at import
    parser = build_parser()
    args = parser.parse_args(argv)  # argparse itself exits 2 with one line on bad options
    verbose = args.verbose or os.environ.get("GENHUMAN_DEBUG") == "1"
    with native_stderr_hidden(enabled=not verbose):  # before logging binds to sys.stderr
        return _run(parser, args, verbose)


def _run(parser: argparse.ArgumentParser, args: argparse.Namespace, verbose: bool) -> int:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        with signals_as_interrupts():
            result = args.func(args)
    except GenHumanError as exc:
        if verbose:
            logging.exception("failed")
        print(f"genhuman: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except Terminated as exc:
        print(f"genhuman: terminated ({exc.name})", file=sys.stderr)
        return 128 + exc.signum
    except KeyboardInterrupt:
        print("genhuman: interrupted", file=sys.stderr)
        return 130
    except MemoryError:
        print("genhuman: error: out of memory; try a smaller --max-size or shorter audio", file=sys.stderr)
        return 1
    except Exception as exc:  # a bug: say so in one line, full traceback with --verbose
        if isinstance(exc, OSError):
            message = path_error(exc)
            if message is not None:  # a path the user gave: their input, exit 2
                if verbose:
                    logging.exception("failed")
                print(f"genhuman: error: {message}", file=sys.stderr)
                return 2
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                print(f"genhuman: error: {exc.strerror}; free some space and try again", file=sys.stderr)
                return 1
        if verbose:
            raise
        extra = _EXTRA_OF.get((exc.name or "").split(".")[0]) if isinstance(exc, ModuleNotFoundError) else None
        if extra is not None:
            print(f"genhuman: error: {exc}: '{args.command}' needs genhuman's {extra} extra "
                  f"(pip install 'genhuman[{extra}]')", file=sys.stderr)
            return 1
        print(f"genhuman: internal error: {type(exc).__name__}: {exc} (run with --verbose for details)",
              file=sys.stderr)
        return 1
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
