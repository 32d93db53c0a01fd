"""`python -m magicanimate_core COMMAND ...` (see `--help`)."""

from .cli import main

raise SystemExit(main())
