"""The live log of the CLI's long-running commands (`ibot run`, `ibot demo`, `ibot webhook`): ibot's and
ib_async's INFO to a file, only errors on the terminal, so the status lines stay readable."""

from __future__ import annotations

import logging
from pathlib import Path

__all__ = ["log_to_file"]


def log_to_file(path: Path) -> None:
    """INFO and up of ibot and ib_async to `path`; the terminal keeps ERROR and up (status lines readable)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    root = logging.getLogger()
    if any(getattr(h, "baseFilename", None) == str(path.resolve()) for h in root.handlers):
        return
    to_file = logging.FileHandler(path, encoding="utf-8")
    to_file.setLevel(logging.INFO)
    to_file.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(to_file)
    if not any(isinstance(h, logging.StreamHandler) and h is not to_file for h in root.handlers):
        to_terminal = logging.StreamHandler()
        to_terminal.setLevel(logging.ERROR)
        to_terminal.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        root.addHandler(to_terminal)
    root.setLevel(logging.INFO)
    logging.getLogger("ib_async").setLevel(logging.INFO)
