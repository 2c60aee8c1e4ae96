"""``python -m soma_gateway`` (or ``soma-gateway``): read the settings (every problem at once), then serve
until SIGTERM."""
import sys

from soma_service import serve

from .app import build_app
from .settings import GatewaySettings


def main() -> int:
    return serve(GatewaySettings, build_app)


if __name__ == "__main__":
    sys.exit(main())
