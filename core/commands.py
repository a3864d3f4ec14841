"""Capability subcommands of `python -m core`, registered in `core/cli.py`.

Each entry is a function `register(subparsers)`; capabilities append theirs here.
"""
from __future__ import annotations

REGISTER: list = []
