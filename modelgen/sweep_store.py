"""A sweep's finished chunks on disk, so that a stopped or crashed sweep loses nothing.

Beside the table ``TABLE`` a folder ``TABLE.chunks/`` holds ``sweep.json`` (what decides the
sweep's numbers, and its chunk size) and one ``chunk-NNNNNN.npz`` per finished chunk, each
written atomically as it arrives. A resumed sweep (``--resume``) checks that it is the same
sweep, reads the finished chunks and runs only the others; once the table is written the
folder is removed. A chunk is stored under its index, so a chunk run twice (a worker lost
mid-chunk) is stored once.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np

from .atomic import atomic_file, write_text_atomic
from .sweep import ChunkedGrid, ChunkResult

__all__ = ["ChunkStore", "SweepStoreError"]


class SweepStoreError(Exception):
    """The chunk folder belongs to another sweep, or to an unfinished one that was not resumed."""


class ChunkStore:
    """The finished chunks of one sweep, in ``folder``."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)

    @classmethod
    def beside(cls, table: str | Path) -> ChunkStore:
        """Return the store of the sweep whose table is written to ``table``."""
        table = Path(table)
        return cls(table.parent / (table.name + ".chunks"))

    def open(self, plan: ChunkedGrid, resume: bool) -> tuple[ChunkedGrid, dict[int, ChunkResult]]:
        """Start or resume ``plan`` here; return the plan to run (a resumed one keeps its chunk size) and the finished chunks.

        Raises :class:`SweepStoreError` if the folder holds an unfinished sweep and ``resume`` is
        False, or holds another sweep.
        """
        description = plan.description()
        info = self.folder / "sweep.json"
        if self.folder.exists() and not resume and not self._chunk_files():
            self.remove()  # a sweep that failed before its first chunk: nothing to keep
        if self.folder.exists():
            if not resume:
                raise SweepStoreError(
                    f"{self.folder} holds {len(self._chunk_files())} finished chunk(s) of an unfinished sweep; "
                    "add --resume to finish it, or remove the folder to start again"
                )
            try:
                stored = json.loads(info.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                raise SweepStoreError(f"{info} is missing or unreadable; remove {self.folder} to start again") from None
            differs = [k for k in description if stored.get("sweep", {}).get(k) != _as_json(description[k])]
            if differs:
                raise SweepStoreError(
                    f"{self.folder} holds another sweep (its {', '.join(differs)} differ); "
                    "resume with the same model and options, or remove the folder to start again"
                )
            plan = replace(plan, chunk=int(stored["chunk_points"]))
            return plan, {r.index: r for r in self._read_all(plan)}
        self.folder.mkdir(parents=True)
        write_text_atomic(info, json.dumps({"sweep": description, "chunk_points": plan.chunk}, indent=1) + "\n")
        return plan, {}

    def save(self, chunk: ChunkResult) -> None:
        """Write one finished chunk (atomically; a chunk saved again replaces itself)."""
        arrays = {_VALUE + key: v for key, v in chunk.values.items()}
        with atomic_file(self.folder / f"chunk-{chunk.index:06d}.npz") as f:
            np.savez(
                f,
                **arrays,
                metadata=np.array(json.dumps(chunk.metadata, default=str)),
                cost=np.array([chunk.neuron_steps, chunk.wall_s]),
            )

    def remove(self) -> None:
        """Delete the folder (once the table is written)."""
        shutil.rmtree(self.folder, ignore_errors=True)

    def _chunk_files(self) -> list[Path]:
        return sorted(self.folder.glob("chunk-*.npz"))

    def _read_all(self, plan: ChunkedGrid) -> list[ChunkResult]:
        out = []
        for path in self._chunk_files():
            index = int(path.stem.removeprefix("chunk-"))
            if index >= plan.n_chunks:
                continue
            with np.load(path) as z:
                cost = z["cost"]
                out.append(
                    ChunkResult(
                        index,
                        {key.removeprefix(_VALUE): z[key] for key in z.files if key.startswith(_VALUE)},
                        json.loads(str(z["metadata"])),
                        int(cost[0]),
                        float(cost[1]),
                    )
                )
        return out


_VALUE = "value:"  # the arrays of measured values in a chunk's .npz (besides its metadata and cost)


def _as_json(value):
    """Return ``value`` as it reads back from JSON (tuples become lists)."""
    return json.loads(json.dumps(value))
