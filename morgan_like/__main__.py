"""Allow ``python -m morgan_like``."""

from morgan_like.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
