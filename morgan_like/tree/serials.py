"""The tree's own serials: what a page carries when upstream gives none.

A tree is an upstream for other mirrors, and they compare serials only: a
constant serial (0, or none) makes every downstream mirror believe nothing ever
changes.  So a page written without upstream's serial (an index such as
pypiserver gives none, and a bundle has none at all) keeps the serial it had
while its bytes stay the same, and takes the tree's next serial when anything
on it changes (tree/writer.py decides which).  The counter is kept in the tree
state and starts above every serial the tree has published, so it never goes
back, even past a project that left; a state rebuilt from the tree starts again
above the pages' own trailers.
"""

from __future__ import annotations

from collections.abc import Callable

from morgan_like.tree.state import TreeState

Pages = list[tuple[str, bytes]]

OWN_SERIAL_KEY = "own-serial"  # the tree state's record of the highest serial given


class OwnSerials:
    """The counter of one writing session."""

    def __init__(self, state: TreeState) -> None:
        self.state = state
        self._high: int | None = None

    def published(self) -> int | None:
        """The highest serial the tree has given a page (None: none yet)."""
        if self._high is None:
            stored = self.state.sync_value(OWN_SERIAL_KEY)
            known = [s for _, s in self.state.projects() if s is not None]
            if stored is not None and stored.isdigit():
                known.append(int(stored))
            self._high = max(known, default=0)
        return self._high or None

    def next(self) -> int:
        self._high = (self.published() or 0) + 1
        self.state.set_sync_value(OWN_SERIAL_KEY, str(self._high))
        return self._high

    def choose(
        self,
        norm: str,
        render: Callable[[int | None], Pages],
        differs: Callable[[str, bytes], bool],
    ) -> tuple[int, Pages]:
        """The project's serial and its pages: the serial it has while the pages rendered
        with it are the bytes on disk, else the next one."""
        before = self.state.project(norm)[1]
        if before is not None:
            pages = render(before)
            if not any(differs(rel, data) for rel, data in pages):
                return before, pages
        serial = self.next()
        return serial, render(serial)
