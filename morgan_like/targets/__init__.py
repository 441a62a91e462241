"""The machines we build for: one Environment per ``[env.NAME]``, pure, no I/O.

An Environment is a full PEP 508 marker environment and the wheel tags its pip
accepts, best first (``environments``); ``tags`` derives them (manylinux, musllinux,
macOS, Windows, abi3, free-threaded); ``generate`` writes the config blocks that
describe the running interpreter (``generate_env`` / ``generate_reqs``).  The
records are built by ``config``, which reads the sections; this package imports
no other package but ``errors``.
"""
