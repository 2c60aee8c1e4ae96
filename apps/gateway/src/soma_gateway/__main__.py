"""``python -m soma_gateway``: read the settings (every problem at once), then serve until SIGTERM."""
import sys

from soma_service import SettingsError, run

from .app import build_app
from .settings import GatewaySettings

if __name__ == "__main__":
    try:
        settings = GatewaySettings.from_env()
    except SettingsError as error:
        print(error, file=sys.stderr)
        sys.exit(2)
    run(build_app(settings))
