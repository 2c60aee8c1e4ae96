"""``python -m soma_memory`` (or ``soma-memory``): read the settings (every problem at once), load the
embedding model, then serve until SIGTERM."""
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")   # the model is the packaged one: never ask a hub

from soma_service import serve

from .app import build_app
from .settings import MemorySettings


def main() -> int:
    return serve(MemorySettings, build_app)


if __name__ == "__main__":
    sys.exit(main())
