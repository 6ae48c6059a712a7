"""``python -m imagina`` runs the command-line interface."""

from imagina.core.cli import main

raise SystemExit(main())
