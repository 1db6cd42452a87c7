"""``genhuman data ACTION``: data sets for training.

Each action lives in its own module (``genhuman.cli.data_<action>``) and exposes
``register(actions)``; an action whose module is not part of this build is left out.
- ``prepare``: talking-head videos -> the training layout of a family (issue "Training").
- ``curate``: raw videos -> filtered talking-human clips with scores and a report.
"""

from __future__ import annotations

import argparse
import importlib

ACTION_MODULES = ["prepare", "curate"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="prepare or curate training data",
                       description="Training data: curate raw footage into talking-human clips, and "
                                   "prepare clips into a family's training layout.")
    actions = p.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    for name in ACTION_MODULES:
        try:
            module = importlib.import_module(f"genhuman.cli.data_{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"genhuman.cli.data_{name}":
                continue
            raise
        module.register(actions)
