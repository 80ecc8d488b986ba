"""A bounded ``Camera.timeline`` for a camera that runs for hours (the live view)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

FRAMES_KEPT = 3000  # per-frame metadata kept: minutes of frames, far more than one cycle spans


class RecentFrames:
    """``Camera.timeline`` for a camera that runs for hours: indexed by the absolute frame
    number like the list it replaces (cycles slice it from their first frame), but only the
    last ``keep`` frames are held, so a live view does not grow by ~2 KB a frame forever."""

    def __init__(self, frames: list[dict[str, Any]], keep: int = FRAMES_KEPT) -> None:
        self.keep = keep
        self.dropped = 0  # frames before the ones held
        self.frames = list(frames)

    def append(self, meta: dict[str, Any]) -> None:
        self.frames.append(meta)
        if len(self.frames) > 2 * self.keep:  # trim in batches: O(1) per frame on average
            cut = len(self.frames) - self.keep
            del self.frames[:cut]
            self.dropped += cut

    def __len__(self) -> int:
        return self.dropped + len(self.frames)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.frames)

    def _held(self, index: int) -> int:
        if index < 0:
            index += len(self)
        if index < self.dropped:
            raise IndexError(f"frame {index} is no longer kept (the last {self.keep} are)")
        return index - self.dropped

    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            start, stop, step = index.indices(len(self))
            return self.frames[self._held(start) : max(stop - self.dropped, 0) : step]
        return self.frames[self._held(index)]
