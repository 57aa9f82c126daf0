"""The JSON file every saved student carries: its kind, label set, settings and training history."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

CONFIG_FILE = "student_config.json"


def write_student_config(folder: Path, kind: str, labels: list[str], config, history: dict) -> None:
    (folder / CONFIG_FILE).write_text(json.dumps(
        {"kind": kind, "labels": labels, "config": asdict(config), "history": history}, indent=2))


def read_student_config(folder: str | Path, kind: str) -> dict:
    """The saved student's JSON; a clear error when the folder holds another kind of student."""
    meta = json.loads((Path(folder) / CONFIG_FILE).read_text())
    if meta.get("kind") != kind:
        raise ValueError(f"{folder} holds a {meta.get('kind')!r} student, not a {kind!r} one")
    return meta
