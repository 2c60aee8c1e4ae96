"""``python -m soma_memory`` (or ``soma-memory``): read the settings (every problem at once), load the
embedding model, then serve until SIGTERM."""
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")   # the model is the packaged one: never ask a hub

from soma_service import SettingsError, run

from .app import build_app
from .settings import MemorySettings


def main() -> int:
    try:
        settings = MemorySettings.from_env()
    except SettingsError as error:
        print(error, file=sys.stderr)
        return 2
    run(build_app(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
