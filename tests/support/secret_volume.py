"""A Kubernetes Secret volume as the kubelet lays it out, updated as the kubelet updates it.

The volume holds `..<timestamp>/` directories with the files, `..data` -> the current one, and
each key as `<key>` -> `..data/<key>`. An update writes a new timestamped directory, points a
temporary link at it and renames that over `..data`: every key changes in one step.
"""

from __future__ import annotations

import itertools
import shutil
from pathlib import Path

_generation = itertools.count()


class SecretVolume:
    """A Secret volume in `directory`; `update()` swaps in new contents atomically."""

    def __init__(self, directory: Path, files: dict[str, bytes]) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self._current: Path | None = None
        self.update(files)
        for key in files:
            (directory / key).symlink_to(Path("..data") / key)

    def path(self, key: str) -> Path:
        return self.directory / key

    def update(self, files: dict[str, bytes]) -> None:
        generation = self.directory / f"..2026_12_02_{next(_generation):06d}"
        generation.mkdir()
        for key, data in files.items():
            (generation / key).write_bytes(data)
        staging = self.directory / "..data_tmp"
        staging.symlink_to(generation.name)
        staging.replace(self.directory / "..data")
        if self._current is not None:
            shutil.rmtree(self._current)
        self._current = generation
