"""The build's one check beyond pyproject.toml: the room links are links (setuptools runs this file).

Without it, a checkout with core.symlinks=false would build a wheel without leanstack's rooms and
say nothing; importing leanstack here raises the one-line error that names the fix.
"""

import sys
from pathlib import Path

from setuptools import setup

sys.path.insert(0, str(Path(__file__).resolve().parent))
try:
    import leanstack  # noqa: F401  (the import is the check)
except ImportError as error:
    sys.exit(f"error: {error}")
finally:
    del sys.path[0]

setup()
