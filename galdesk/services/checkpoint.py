"""Finished chunks of a batch kept on disk, so that a batch that was killed continues where it stopped.

A batch (:mod:`galdesk.services.batch`) splits its work into chunks that run on worker processes or a Dask cluster;
its results are committed at the end by the one process that started it. Until then, each finished chunk's result
is written by that process into ``PROJECT/batch/<task>-<key>/chunk-NNNNNN.npz`` (atomically: a chunk file is whole
or absent); a batch without a project names its own folder (``batch fit-lines -o TABLE``: ``.galdesk-batch/``
beside the table). ``<key>`` is a digest of everything the result depends on (the task, the model's hash, the
options and the stack rows of every chunk; the input files' sizes and times), so a restart with the same inputs
finds the finished chunks and runs only the others, while a restart with other inputs (another model, a project
that grew, a file changed) starts afresh and never mixes the two. The folder is removed once the results are
committed. Each result is an array and a JSON-able dict; nothing is unpickled.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import shutil
from pathlib import Path

import numpy as np

from galdesk.fsutil import atomic_write
from galdesk.jsonutil import json_default

__all__ = ["Checkpoint", "FOLDER"]

#: the folder of a project that holds the checkpoints of unfinished batches
FOLDER = "batch"
_CHUNK = re.compile(r"^chunk-(\d{6,})\.npz$")


class Checkpoint:
    """The finished chunks of one batch (module docstring).

    Parameters
    ----------
    project_path : the project folder
    task : a name (``"classify"``, ``"features"``)
    key : everything the chunks' results depend on (JSON-able; arrays are hashed by their bytes)
    folder : where the checkpoints live instead of ``project_path/batch`` (a batch without a project, e.g.
        ``batch fit-lines -o TABLE``: ``.galdesk-batch`` beside the table); ``project_path`` is then not used
    """

    def __init__(self, project_path: str | Path | None, task: str, key: dict,
                 folder: str | Path | None = None) -> None:
        h = hashlib.sha256()
        for name in sorted(key):
            value = key[name]
            h.update(name.encode())
            if isinstance(value, np.ndarray):
                h.update(str(value.dtype).encode() + str(value.shape).encode() + np.ascontiguousarray(value).tobytes())
            else:
                h.update(json.dumps(value, sort_keys=True, default=json_default).encode())
        base = Path(folder) if folder is not None else Path(project_path) / FOLDER
        self.path = base / f"{task}-{h.hexdigest()[:16]}"

    def numbers(self) -> list[int]:
        """The numbers of the chunk files present (whether or not they can be read)."""
        if not self.path.is_dir():
            return []
        return sorted(int(m.group(1)) for p in self.path.iterdir() if (m := _CHUNK.match(p.name)))

    def load(self) -> dict[int, tuple[np.ndarray, dict]]:
        """``{chunk: (array, meta)}`` of the chunks already finished (a file that cannot be read is run again)."""
        done = {}
        if not self.path.is_dir():
            return done
        for p in sorted(self.path.iterdir()):
            m = _CHUNK.match(p.name)
            if not m:
                continue
            try:
                with np.load(p, allow_pickle=False) as z:
                    done[int(m.group(1))] = (np.array(z["array"]), json.loads(str(z["meta"])))
            except (OSError, ValueError, KeyError):
                continue
        return done

    def save(self, chunk: int, result: tuple[np.ndarray, dict]) -> None:
        """Keep one chunk's ``(array, meta)``."""
        array, meta = result
        buf = io.BytesIO()
        np.savez(buf, array=np.asarray(array), meta=np.array(json.dumps(meta, default=json_default)))

        def write(tmp):
            Path(tmp).write_bytes(buf.getvalue())

        self.path.mkdir(parents=True, exist_ok=True)
        atomic_write(self.path / f"chunk-{chunk:06d}.npz", write)

    def clear(self) -> None:
        """Remove the folder (the results are committed), and the ``batch`` folder (or ``folder``) when nothing
        else is in it."""
        shutil.rmtree(self.path, ignore_errors=True)
        try:
            self.path.parent.rmdir()
        except OSError:
            pass
