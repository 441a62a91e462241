"""The tree on disk: layout, pages, state, the writer and the one publish step.

Everything a tree holds is named by ``layout``, written atomically (``files``),
recorded in the hidden sqlite state (``state``), rendered as PEP 503 / 691 pages
(``pages``, ``writer``, ``views``) and made visible by ``publish`` at the end of a
run (root pages, removals, manifest, diff-file), or pushed to a bucket
(``storage``, ``bucketpush``).  Never imports ``index``, ``resolve``, ``fetch`` or
``requests`` (tests/test_layout.py): a tree is written from records alone.
"""
