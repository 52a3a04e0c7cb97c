"""``python -m bids_ms`` runs the command line."""

from .cli.run import main

if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
