"""``python -m soma_orchestrator`` (or ``soma-orchestrator``): read the settings (every problem at once),
then serve until SIGTERM; ``python -m soma_orchestrator openapi`` prints the OpenAPI document."""
import json
import sys

from soma_service import serve

from .settings import OrchestratorSettings


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["openapi"]:   # the document of the real app (error bodies included), without settings
        from .app import build_app

        settings = OrchestratorSettings.model_construct(**{name: field.default for name, field in
                                                           OrchestratorSettings.model_fields.items() if not field.is_required()})
        print(json.dumps(build_app(settings, configure_logging=False).openapi(), indent=2, sort_keys=True))
        return 0
    return serve(OrchestratorSettings, _build_app)


def _build_app(settings: OrchestratorSettings):
    """The app, imported only once the settings are read (a settings error does not pay for the import)."""
    from .app import build_app

    return build_app(settings)


if __name__ == "__main__":
    sys.exit(main())
