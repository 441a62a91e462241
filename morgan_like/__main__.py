"""Allow ``python -m morgan_like``."""

from morgan_like.cli import run

if __name__ == "__main__":
    run()
