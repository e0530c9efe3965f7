"""`python -m dagu`: the same entry point as the `dagu` console script."""

from dagu.cli.main import main

raise SystemExit(main())
