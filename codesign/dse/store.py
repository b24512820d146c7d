"""Results that survive a crash: a CSV table appended one whole row at a time.

Each finished point is appended as one ``write`` of a complete line (``O_APPEND``) and
flushed to disk before the next, so a killed sweep leaves every finished row intact and at
most one torn last line, which the next open drops. A rerun reads the table and skips every
point whose key it holds.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

Kind = Literal["str", "int", "float", "bool", "json"]

POINT_COLUMNS: dict[str, Kind] = {
    "key": "str", "example": "str", "target_cycles": "int", "folding": "json",
    "family": "json", "family_label": "str", "sparse": "json", "fifo_depth": "int",
    "memory_style": "json", "folding_objective": "str", "status": "str", "error": "str",
    "accuracy": "float", "cycles_per_frame": "float", "energy_pj_per_frame": "float",
    "lut": "int", "ff": "int",
    "bram18": "float", "dsp": "int", "resources_error": "str", "engines": "str",
    "design": "str",
    "seconds": "float", "finished_at": "float",
}
"""The analytical results table (``points.csv``): a point's axes, status and figures."""

RTL_COLUMNS: dict[str, Kind] = {
    "key": "str", "rtl_status": "str", "rtl_frames": "int", "rtl_cycles_per_frame": "float",
    "rtl_total_cycles": "int", "rtl_energy_pj_per_frame": "float", "analytical_match": "bool",
    "rtl_error": "str", "rtl_seconds": "float", "rtl_finished_at": "float",
}
"""The RTL verification table (``rtl.csv``): one row per verified design of the front (its
``key`` is the points' ``design``)."""


class ResultsStore:
    """One CSV results table keyed by the ``key`` column."""

    def __init__(self, path: str | Path, columns: Mapping[str, Kind]) -> None:
        self.path, self.columns = Path(path), dict(columns)
        self._drop_torn_line()
        if not self.path.is_file() or self.path.stat().st_size == 0:
            self._append(self._line(list(self.columns)))
        else:
            with self.path.open(newline="", encoding="utf-8") as handle:
                header = next(csv.reader(handle), [])
            if header != list(self.columns):
                from codesign.errors import SweepError
                raise SweepError(f"{self.path} holds another table (columns {header}); "
                                 "give the sweep an output directory of its own")

    def rows(self) -> list[dict[str, Any]]:
        """Every stored row, decoded; a later row of a key replaces an earlier one."""
        with self.path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            by_key = {}
            for raw in reader:
                row = {name: _decode(raw.get(name, ""), kind)
                       for name, kind in self.columns.items()}
                by_key[row["key"]] = row
        return list(by_key.values())

    def keys(self) -> set[str]:
        return {row["key"] for row in self.rows()}

    def append(self, row: Mapping[str, Any]) -> None:
        """Store one row (columns it lacks stay empty; unknown fields are refused)."""
        unknown = set(row) - set(self.columns)
        if unknown:
            raise ValueError(f"{self.path.name}: unknown column(s) {sorted(unknown)}")
        self._append(self._line([_encode(row.get(name)) for name in self.columns]))

    @staticmethod
    def _line(cells: Sequence[str]) -> bytes:
        text = io.StringIO()
        csv.writer(text, lineterminator="\n").writerow(cells)
        return text.getvalue().encode("utf-8")

    def _append(self, data: bytes) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)

    def _drop_torn_line(self) -> None:
        """Cut a last line a killed writer left without its newline."""
        if not self.path.is_file():
            return
        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):
            with self.path.open("r+b") as handle:
                handle.truncate(data.rfind(b"\n") + 1)


def _encode(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True)


def _decode(text: str | None, kind: Kind) -> Any:
    if text is None or text == "":
        return None
    if kind == "str":
        return text
    if kind == "int":
        return int(float(text))
    if kind == "float":
        return float(text)
    if kind == "bool":
        return text == "true"
    try:
        return json.loads(text)
    except ValueError:
        return text  # a family or memory style named by a word
