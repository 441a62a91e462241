"""The commands' runs: each wires the stages, config to publish, for one command.

``bundle`` (``mirror``: resolve every env, download, write, publish), ``sync`` (a
full mirror from the serial list, or a curated ``slice``), ``genlocal``, ``verify``
repairs (``treecheck``), ``serve``, ``nginx`` / ``nginx_bucket`` (``nginx-config``),
and the bucket runs (``bucket*``: the mode on a local working tree, then a push).
Each takes its options record from ``cli.commands`` and reports through
``output.Reporter``; what fails reaches the CLI as an ``errors`` exception.
"""
