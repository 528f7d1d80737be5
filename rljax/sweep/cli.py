"""``rljax sweep`` and ``rljax validate`` (wired to the engine in a later step)."""
from __future__ import annotations

import argparse


def add_sweep_commands(sub: argparse._SubParsersAction) -> None:
    return None
