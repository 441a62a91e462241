"""Distribution files and their metadata: pure parsing, no network.

Wheel and sdist names (``filenames``: what a name says, and the one rule for a name
we write), project pages in both formats into the same vetted records (``links``,
``htmlpage``), core metadata, bounded archive reads, static sdist metadata and
build requirements (read once per run, in worker processes when the run has them),
serial lists, and a slice's file filters.  Nothing here imports ``index``,
``fetch``, ``resolve``, ``tree`` or ``modes`` (tests/test_layout.py).
"""
