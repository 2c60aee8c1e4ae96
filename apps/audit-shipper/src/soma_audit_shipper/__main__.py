"""``python -m soma_audit_shipper`` (or ``soma-audit-shipper``): read the settings (every problem at once),
then serve until SIGTERM."""
import sys

from soma_service import serve

from .app import build_app
from .settings import ShipperSettings


def main() -> int:
    return serve(ShipperSettings, build_app)


if __name__ == "__main__":
    sys.exit(main())
