"""`python -m proxy` is the `idgate` command."""

import sys

from proxy.cli import main

sys.exit(main())
