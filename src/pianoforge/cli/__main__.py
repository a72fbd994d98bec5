"""``python -m pianoforge.cli``: the same as the ``pianoforge`` console script."""

import sys

from pianoforge.cli import main

sys.exit(main())
