"""``python -m soma_orchestrator`` (or ``soma-orchestrator``): read the settings (every problem at once),
then serve until SIGTERM; ``python -m soma_orchestrator openapi`` prints the OpenAPI document."""
import json
import sys

from soma_service import SettingsError, run

from .settings import OrchestratorSettings


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["openapi"]:   # the document of the real app (error bodies included), without settings
        from .app import build_app

        settings = OrchestratorSettings.model_construct(**{name: field.default for name, field in
                                                           OrchestratorSettings.model_fields.items() if not field.is_required()})
        print(json.dumps(build_app(settings, configure_logging=False).openapi(), indent=2, sort_keys=True))
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
