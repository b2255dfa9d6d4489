"""``python -m modelops.submit <model> --model-uri <MLflow URI>`` (see ``modelops.submit.cli``)."""

import sys

from modelops.submit.cli import main

sys.exit(main())
