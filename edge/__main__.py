"""``python -m edge`` is the same as the ``edge`` command."""

from edge.cli.app import main

raise SystemExit(main())
