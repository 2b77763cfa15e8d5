"""`python -m kubellm` is the `kubellm` command."""

import sys

from kubellm.cli import main

sys.exit(main())
