"""``python -m modelops.scaffold``: draft a model declaration (and, ``--with-code``, a starter code package)
from a sample file; see ``modelops.scaffold.cli``."""

import sys

from modelops.scaffold.cli import main

sys.exit(main())
