"""Which folders under apps/ are services the release pipeline builds, and what each image runs.

A service folder has a ``pyproject.toml`` (name, version) and a hash-locked ``requirements.lock``; a
folder without both (a shared library such as ``apps/common`` ships inside the services' locks, a
scratch folder) is not an image. The image runs ``python -m <package>``, the one package under
``src/``, unless the project says otherwise in ``[tool.soma.image] command``.
"""
from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
APPS_ROOT = PROJECT_ROOT / "apps"
VENV = "/opt/app/venv"
IMAGE_KEY = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


class AppError(ValueError):
    """A service folder the pipeline cannot build; the message names the folder and the field."""


@dataclass(frozen=True)
class App:
    name: str            # the folder name: the image name and the catalog key (catalog.app_image(name))
    folder: Path
    project: str         # [project] name, as pip knows the app's own wheel
    version: str
    command: tuple[str, ...]

    @property
    def lock(self) -> Path:
        return self.folder / "requirements.lock"


def is_service(folder: Path) -> bool:
    return (folder / "pyproject.toml").is_file() and (folder / "requirements.lock").is_file()


def read_app(folder: Path) -> App:
    """The app in ``folder``; raises :class:`AppError` naming the file and field that is wrong."""
    pyproject = folder / "pyproject.toml"
    try:
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise AppError(f"{pyproject}: cannot be read as TOML ({error})") from error
    project = data.get("project") or {}
    name, version = project.get("name"), project.get("version")
    if not isinstance(name, str) or not isinstance(version, str):
        raise AppError(f"{pyproject}: [project] needs a literal 'name' and 'version' (the image is tagged with the version)")
    if not IMAGE_KEY.match(folder.name):
        raise AppError(f"{folder}: folder names are image names: lower-case words joined by dashes")
    if not (folder / "requirements.lock").is_file():
        raise AppError(f"{folder}: requirements.lock is missing (a hash-locked file: uv pip compile --generate-hashes)")
    if "--hash=sha256:" not in (folder / "requirements.lock").read_text(encoding="utf-8"):
        raise AppError(f"{folder / 'requirements.lock'}: no --hash=sha256: entries; the image installs with --require-hashes")
    command = ((data.get("tool") or {}).get("soma") or {}).get("image", {}).get("command")
    if command is None:
        packages = sorted(p.name for p in (folder / "src").glob("*/__init__.py") for p in [p.parent])
        if len(packages) != 1 or not (folder / "src" / packages[0] / "__main__.py").is_file():
            raise AppError(f"{folder}: give the image command in [tool.soma.image] command, or have exactly one "
                           f"package under src/ with a __main__.py (found {packages or 'none'})")
        command = [f"{VENV}/bin/python", "-m", packages[0]]
    if not (isinstance(command, list) and command and all(isinstance(c, str) and c for c in command)):
        raise AppError(f"{pyproject}: [tool.soma.image] command must be a non-empty list of strings")
    return App(name=folder.name, folder=folder, project=name, version=version, command=tuple(command))


def is_library(folder: Path) -> bool:
    """A shared library (apps/common): no image command and no runnable package; it ships inside services."""
    data = tomllib.loads((folder / "pyproject.toml").read_text(encoding="utf-8"))
    if ((data.get("tool") or {}).get("soma") or {}).get("image", {}).get("command"):
        return False
    return not any((folder / "src").glob("*/__main__.py"))


def discover(root: Path = APPS_ROOT) -> tuple[list[App], list[Path]]:
    """The services under ``root`` sorted by name, and the library folders skipped (empty when apps/ is absent)."""
    if not root.is_dir():
        return [], []
    folders = [f for f in sorted(root.iterdir()) if f.is_dir() and is_service(f)]
    libraries = [f for f in folders if is_library(f)]
    return [read_app(f) for f in folders if f not in libraries], libraries
