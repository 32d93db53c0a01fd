"""Entry point of `python -m densepose_node`."""

import sys

from .cli import main

sys.exit(main())
