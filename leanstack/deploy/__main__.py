"""`python -m leanstack.deploy deploy|rollback|releases ...`: the deploy commands as a program of their
own (the app-deploy workflow runs it so)."""

import sys

from leanstack.deploy.cli import main

sys.exit(main())
