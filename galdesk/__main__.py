"""``python -m galdesk`` -> :func:`galdesk.cli.main`."""

from galdesk.cli import main

if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
