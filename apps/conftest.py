"""Makes every app's ``src/`` importable for the apps' tests (``apps/*/src`` on ``sys.path``).

Why a path hook rather than editable installs: the dev virtualenv is shared by several work trees, and an
editable install pins it to one tree's files; a path computed from this file always imports the apps of the
tree being tested, and a new app needs no change here. Outside pytest, ``tools/apps_path.sh`` prints the
same ``PYTHONPATH``.
"""

import sys
from pathlib import Path

for source in sorted(Path(__file__).resolve().parent.glob("*/src")):
    if str(source) not in sys.path:
        sys.path.insert(0, str(source))
