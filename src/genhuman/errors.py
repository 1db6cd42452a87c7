"""Error types shared by every layer.

The CLI turns an :class:`InputError` into one line on stderr and exit code 2; the
server turns it into a JSON 4xx. Raise it for anything the *user* got wrong (missing,
corrupt or unsupported file, no face, silent audio, absurd option values). Anything
else is a bug or an environment problem and keeps its traceback under ``--verbose``.
"""


class GenHumanError(Exception):
    """Base class; ``exit_code`` is what the CLI exits with."""

    exit_code = 1


class InputError(GenHumanError, ValueError):
    """Bad user input: one clear sentence, no traceback, exit code 2."""

    exit_code = 2


class MissingWeightsError(InputError):
    """Weights an engine needs are not where the user pointed."""


class Cancelled(GenHumanError):
    """A job was cancelled through its ``should_cancel`` callback."""

    exit_code = 130
