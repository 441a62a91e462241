"""What the user asked for: morgan.ini, a sync's config, and every file they name.

Requirements and constraints files, pyproject.toml, dependency groups, uv.lock and
pylock.toml, ``[env.NAME]`` sections (read into ``targets``' Environment records),
``[storage]``, and bandersnatch configs to translate are read here into typed
records, each problem a ConfigError naming its file and line.  Every input file is
read one way (``textfile``).  Pure: no network, no tree (tests/test_layout.py).
"""
