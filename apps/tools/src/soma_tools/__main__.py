"""``python -m soma_tools`` (or ``soma-tools``): read the settings (every problem at once), then serve
until SIGTERM."""
import sys

from soma_service import SettingsError, run

from .app import build_app
from .settings import ToolsSettings


def main() -> int:
    try:
        settings = ToolsSettings.from_env()
    except SettingsError as error:
        print(error, file=sys.stderr)
        return 2
    run(build_app(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
