"""``python -m soma_orchestrator`` (or ``soma-orchestrator``): read the settings (every problem at once),
then serve until SIGTERM; ``python -m soma_orchestrator openapi`` prints the OpenAPI document."""
import json
import sys

from soma_service import SettingsError, run

from .settings import OrchestratorSettings


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["openapi"]:
        from .api import router
        from fastapi import FastAPI

        app = FastAPI(title="SomaAgentHub orchestrator")
        app.include_router(router({}))
        print(json.dumps(app.openapi(), indent=2, sort_keys=True))
        return 0
    try:
        settings = OrchestratorSettings.from_env()
    except SettingsError as error:
        print(error, file=sys.stderr)
        return 2
    from .app import build_app

    run(build_app(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
