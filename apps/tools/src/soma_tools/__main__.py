"""``python -m soma_tools`` (or ``soma-tools``): read the settings (every problem at once), then serve
until SIGTERM."""
import sys

from soma_service import serve

from .app import build_app
from .settings import ToolsSettings


def main() -> int:
    return serve(ToolsSettings, build_app)


if __name__ == "__main__":
    sys.exit(main())
