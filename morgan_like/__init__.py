"""morgan_like: build offline PyPI bundles that real pip and uv install from."""

__version__ = "0.1.0"
