"""``python -m modelops.ingest``: the ingest consumer's command line (see ``modelops.ingest.consumer``)."""

import sys

from modelops.ingest.consumer import main

sys.exit(main())
