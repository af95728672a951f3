"""python -m fastact == the fastact command."""

import sys

from .cli import main

sys.exit(main())
