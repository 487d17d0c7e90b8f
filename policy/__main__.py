"""leanstack's CrossGuard policy pack: `pulumi preview --policy-pack policy` from the repo root.

The rules live in `policy/rules/` (plain Python, also run offline by the test suite and
`python -m leanstack plan`); `policy/crossguard.py` adapts them to pulumi_policy.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Pulumi runs this file with the pack's folder as the working directory; the rules are
# imported as the `policy` package from the repository root, as the tests import them.
REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from pulumi_policy import EnforcementLevel, PolicyPack  # noqa: E402

from leanstack.policy.crossguard import policies  # noqa: E402

PACK_NAME = "leanstack-guardrails"

PolicyPack(name=PACK_NAME, enforcement_level=EnforcementLevel.MANDATORY, policies=policies())  # type: ignore[arg-type]
