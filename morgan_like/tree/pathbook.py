"""A set of tree relpaths kept small: what a session changed or removed, for the diff-file.

A writer notes every path it changes or removes, and publish hands them on (the
diff-file, the tree's generation, the landing page's touched projects).  A first
sync of a whole index changes three pages per project (``simple/<name>/index.html``,
``simple/<name>/index.json``, ``json/<name>``); at PyPI's 900,000 projects, each kept
as its own string in a set, they would take some 1.2 GB.  So a :class:`PathBook`
keeps a project's pages as bits of one small integer per name, and any other path
(files, top-level files, leftovers) as its own string.

It behaves as a set of relpaths (add, discard, ``in``, ``len``, the comparisons and
operators of ``collections.abc.Set``) that iterates in
sorted order, built as it goes from the sorted names rather than held as a list, so
publish streams the diff-file and the generation's rows from it.  Equal to a set
with the same paths, and to a list or tuple of them in sorted order.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator, Set

from morgan_like.tree.layout import normalize_relpath

# The page kinds of a project, one bit each.
_HTML, _JSON, _WAREHOUSE = 1, 2, 4
_SIMPLE_KINDS = {"index.html": _HTML, "index.json": _JSON}
_ONES = (0, 1, 1, 2, 1, 2, 2, 3)  # paths a kinds value stands for


def _page(relpath: str) -> tuple[str, int] | None:
    """(name, kind) when ``relpath`` is a project page in its normalized form; else None
    (the path is kept as its own string)."""
    parts = relpath.split("/")
    if len(parts) == 3 and parts[0] == "simple":
        bit = _SIMPLE_KINDS.get(parts[2])
    elif len(parts) == 2 and parts[0] == "json":
        bit = _WAREHOUSE
    else:
        return None
    name = parts[1]
    if bit is None or not name or name.startswith(".") or "\\" in name:
        return None
    return name, bit


def _folder(name: str) -> str:
    # simple/<name>/... sorts by "<name>/": "a-b/" comes before "a/" ('-' < '/').
    return name + "/"


class PathBook(Set[str]):
    """Tree relpaths, as a set that iterates sorted; see the module docstring."""

    __slots__ = ("_pages", "_other", "_len")

    def __init__(self, paths: Iterable[str] = ()) -> None:
        self._pages: dict[str, int] = {}  # project name -> its page kinds in the book
        self._other: set[str] = set()
        self._len = 0
        for relpath in paths:
            self.add(relpath)

    def add(self, relpath: str, project: str | None = None) -> None:
        """``project``: the name of the project being written, when known; a page of it
        is kept under that string rather than a copy cut from the path."""
        page = _page(relpath)
        if page is None:
            if relpath not in self._other:
                self._other.add(relpath)
                self._len += 1
            return
        name, bit = page
        if name == project:
            name = project
        kinds = self._pages.get(name, 0)
        if not kinds & bit:
            self._pages[name] = kinds | bit
            self._len += 1

    def discard(self, relpath: str) -> None:
        if not self._len:
            return
        page = _page(relpath)
        if page is None:
            if relpath in self._other:
                self._other.remove(relpath)
                self._len -= 1
            return
        name, bit = page
        kinds = self._pages.get(name, 0)
        if kinds & bit:
            if kinds & ~bit:
                self._pages[name] = kinds & ~bit
            else:
                del self._pages[name]
            self._len -= 1

    def __contains__(self, relpath: object) -> bool:
        if not self._len or not isinstance(relpath, str):
            return False
        page = _page(relpath)
        if page is None:
            return relpath in self._other
        return bool(self._pages.get(page[0], 0) & page[1])

    def __len__(self) -> int:
        return self._len

    def __iter__(self) -> Iterator[str]:
        """Every path, sorted."""
        return heapq.merge(*self._page_streams(), sorted(self._other))

    def normalized(self) -> Iterator[str]:
        """Every path normalized (tree/layout.normalize_relpath), sorted, each once; a
        project page is in that form already.  Raises ValueError as normalize_relpath."""
        other = sorted({normalize_relpath(relpath) for relpath in self._other})
        last = None
        for relpath in heapq.merge(*self._page_streams(), other):
            if relpath != last:
                yield relpath
                last = relpath

    def _page_streams(self) -> tuple[Iterator[str], Iterator[str]]:
        """The project pages as two sorted streams: json/<name>, then simple/<name>/..."""
        pages = self._pages
        by_name = sorted(pages)
        by_folder = sorted(pages, key=_folder)
        warehouse = (f"json/{name}" for name in by_name if pages[name] & _WAREHOUSE)
        return warehouse, self._simple(by_folder)

    def _simple(self, names: list[str]) -> Iterator[str]:
        pages = self._pages
        for name in names:
            kinds = pages[name]
            if kinds & _HTML:
                yield f"simple/{name}/index.html"
            if kinds & _JSON:
                yield f"simple/{name}/index.json"

    def projects(self) -> set[str]:
        """The names of the projects that have a page in the book."""
        return set(self._pages)

    def others(self) -> set[str]:
        """The paths kept as their own strings (every path but a project's pages)."""
        return set(self._other)

    def merged(self, more: PathBook, minus: PathBook) -> PathBook:
        """A new book: these paths and ``more``'s, without ``minus``'s."""
        out = PathBook()
        pages = dict(self._pages)
        for name, kinds in more._pages.items():
            pages[name] = pages.get(name, 0) | kinds
        for name, kinds in minus._pages.items():
            if name in pages:
                left = pages[name] & ~kinds
                if left:
                    pages[name] = left
                else:
                    del pages[name]
        out._pages = pages
        out._other = (self._other | more._other) - minus._other
        out._len = sum(_ONES[kinds] for kinds in pages.values()) + len(out._other)
        return out

    def __eq__(self, other: object) -> bool:
        if isinstance(other, PathBook):
            return self._pages == other._pages and self._other == other._other
        if isinstance(other, (set, frozenset)):
            return len(other) == self._len and all(relpath in self for relpath in other)
        if isinstance(other, (list, tuple)):
            return list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable, as a set

    def __repr__(self) -> str:
        shown = list(self) if self._len <= 10 else f"{self._len} paths"
        return f"PathBook({shown})"
