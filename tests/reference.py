"""Where VirtEngine's reference material (shared with this project, not part of it) is found.

`VE_REFERENCE_DIR` if set; else `shared/reference` beside the repository (the workplace layout); else
`/work/shared/reference`. Tests that need a file fail, never skip, when it cannot be found.
"""

from __future__ import annotations

import os
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]


def reference_dir() -> Path | None:
    candidates = [
        Path(os.environ["VE_REFERENCE_DIR"]) if os.environ.get("VE_REFERENCE_DIR") else None,
        REPOSITORY.parent / "shared" / "reference",
        Path("/work/shared/reference"),
    ]
    return next((path for path in candidates if path is not None and path.is_dir()), None)


def reference_file(name: str) -> Path | None:
    directory = reference_dir()
    path = directory / name if directory is not None else None
    return path if path is not None and path.is_file() else None
