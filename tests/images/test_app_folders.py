"""Which folders the pipeline builds, what each image runs, and the lock the image installs (fast tests)."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tools.images import apps, build, sbom

FIXTURE = Path(__file__).resolve().parent / "fixture_apps" / "hello"


def copy_app(tmp_path: Path, name: str = "hello") -> Path:
    folder = tmp_path / "apps" / name
    shutil.copytree(FIXTURE, folder)
    return folder


def test_the_fixture_app_is_a_service_run_as_python_dash_m_its_package():
    app = apps.read_app(FIXTURE)
    assert (app.name, app.project, app.version) == ("hello", "soma-hello", "0.1.0")
    assert app.command == ("/opt/app/venv/bin/python", "-m", "soma_hello")


def test_discovery_builds_services_and_skips_libraries_and_incomplete_folders(tmp_path):
    copy_app(tmp_path, "identity")
    library = copy_app(tmp_path, "common")
    (library / "src" / "soma_hello" / "__main__.py").unlink()
    (copy_app(tmp_path, "scratch") / "requirements.lock").unlink()
    found, libraries = apps.discover(tmp_path / "apps")
    assert [a.name for a in found] == ["identity"]
    assert [f.name for f in libraries] == ["common"]
    assert apps.discover(tmp_path / "nowhere") == ([], [])


def test_an_image_command_in_pyproject_overrides_the_default(tmp_path):
    folder = copy_app(tmp_path)
    pyproject = folder / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + '\n[tool.soma.image]\ncommand = ["/opt/app/venv/bin/uvicorn", "soma_hello:app"]\n')
    assert apps.read_app(folder).command == ("/opt/app/venv/bin/uvicorn", "soma_hello:app")


@pytest.mark.parametrize("breakage, message", [
    (lambda f: (f / "requirements.lock").write_text("uvicorn==0.54.0\n"), "no --hash=sha256: entries"),
    (lambda f: (f / "pyproject.toml").write_text('[project]\nname = "x"\ndynamic = ["version"]\n'), "literal 'name' and 'version'"),
    (lambda f: (f / "pyproject.toml").write_text("[project\n"), "cannot be read as TOML"),
    (lambda f: (f / "src" / "soma_hello" / "__main__.py").unlink(), "exactly one package under src/ with a __main__.py"),
])
def test_a_folder_the_pipeline_cannot_build_is_named_with_the_reason(tmp_path, breakage, message):
    folder = copy_app(tmp_path)
    breakage(folder)
    with pytest.raises(apps.AppError, match=message) as caught:
        apps.read_app(folder)
    assert str(folder) in str(caught.value)


def test_local_path_requirements_become_hash_pinned_wheels_built_from_their_folder(tmp_path):
    """apps/identity may lock apps/common by path; the image installs it as a wheel, hash-pinned."""
    common = copy_app(tmp_path, "common")
    (common / "pyproject.toml").write_text((common / "pyproject.toml").read_text().replace('name = "soma-hello"', 'name = "soma-common"'))
    identity = copy_app(tmp_path, "identity")
    lock = identity / "requirements.lock"
    lock.write_text(lock.read_text() + "soma-common @ file:../common\n    # via soma-hello\n")
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    text = build.install_requirements(apps.read_app(identity), wheels, 1795960487)
    lines = text.splitlines()
    assert lines[0].startswith("click==8.5.1 --hash=sha256:")
    common_line = next(line for line in lines if line.startswith("soma-common==0.1.0 --hash=sha256:"))
    wheel = next(wheels.glob("soma_common-0.1.0-*.whl"))
    assert common_line.endswith(build.sha256_file(wheel))
    assert lines[-1].startswith("soma-hello==0.1.0 --hash=sha256:")
    assert all("--hash=sha256:" in line for line in lines)


def test_the_app_wheel_is_byte_identical_across_builds(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir(), second.mkdir()
    one = build.build_wheel("hello", FIXTURE, first, 1795960487)
    two = build.build_wheel("hello", FIXTURE, second, 1795960487)
    assert build.sha256_file(one) == build.sha256_file(two)
    assert not (FIXTURE / "build").exists()  # built from a copy: the source folder stays clean


def test_option_lines_in_a_lock_are_refused(tmp_path):
    folder = copy_app(tmp_path)
    (folder / "requirements.lock").write_text("--index-url https://example.org/simple\n" + (folder / "requirements.lock").read_text())
    with pytest.raises(build.BuildError, match="option line"):
        build.install_requirements(apps.read_app(folder), tmp_path, 0)


STATUS = """Package: libidn2-0
Status: install ok installed
Priority: optional
Architecture: amd64
Source: libidn2
Version: 2.3.3-1+b1
Description: Internationalized domain names (IDNA2008/TR46) library
 Libidn2 implements the revised algorithm for internationalized domain names

Package: removed-one
Status: deinstall ok config-files
Architecture: amd64
Version: 1.0

Package: tzdata
Status: install ok installed
Architecture: all
Version: 2025b-0+deb12u1
"""


def test_debian_components_come_from_the_dpkg_status_of_the_root_filesystem(tmp_path):
    (tmp_path / "var/lib/dpkg").mkdir(parents=True)
    (tmp_path / "var/lib/dpkg/status").write_text(STATUS)
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc/debian_version").write_text("12.11\n")
    components = sbom.debian_components(tmp_path)
    assert [c["purl"] for c in components] == [
        "pkg:deb/debian/libidn2-0@2.3.3-1+b1?arch=amd64&distro=debian-12",
        "pkg:deb/debian/tzdata@2025b-0+deb12u1?arch=all&distro=debian-12",
    ]
    assert components[0]["properties"] == [{"name": "aquasecurity:trivy:SrcName", "value": "libidn2"}]


def test_a_sibling_project_the_lock_leaves_out_is_built_and_pinned(tmp_path):
    """apps/identity depends on soma-service (apps/common), locked with --no-emit-package soma-service."""
    common = copy_app(tmp_path, "common")
    (common / "pyproject.toml").write_text((common / "pyproject.toml").read_text().replace('name = "soma-hello"', 'name = "soma-service"'))
    identity = copy_app(tmp_path, "identity")
    pyproject = identity / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('dependencies = ["uvicorn"]', 'dependencies = ["soma-service", "uvicorn"]'))
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    lines = build.install_requirements(apps.read_app(identity), wheels, 1795960487).splitlines()
    assert any(line.startswith("soma-service==0.1.0 --hash=sha256:") for line in lines)
    assert lines[-1].startswith("soma-hello==0.1.0 --hash=sha256:")


def test_a_dependency_neither_locked_nor_beside_the_app_is_named(tmp_path):
    identity = copy_app(tmp_path, "identity")
    pyproject = identity / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('dependencies = ["uvicorn"]', 'dependencies = ["uvicorn", "soma-missing>=1"]'))
    with pytest.raises(build.BuildError, match="dependency 'soma-missing>=1' of soma-hello is neither locked nor a project beside"):
        build.install_requirements(apps.read_app(identity), tmp_path, 0)


def test_the_image_sbom_is_valid_cyclonedx_with_python_and_debian_parts_and_no_timestamp(tmp_path):
    import json
    import subprocess
    import sys

    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    rootfs = tmp_path / "rootfs"
    (rootfs / "var/lib/dpkg").mkdir(parents=True)
    (rootfs / "var/lib/dpkg/status").write_text(STATUS)
    (rootfs / "etc").mkdir()
    (rootfs / "etc/debian_version").write_text("12.11\n")
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(rootfs / "opt/app/venv")], check=True)
    document = sbom.image_sbom(apps.read_app(FIXTURE), rootfs, "/opt/app/venv")
    text = json.dumps(document)
    assert JsonStrictValidator(SchemaVersion.from_version(document["specVersion"])).validate_str(text) is None
    assert document["metadata"]["component"] == {"type": "container", "bom-ref": "image:hello", "name": "hello", "version": "0.1.0"}
    assert document["components"][0] == {"type": "operating-system", "bom-ref": "debian-12.11", "name": "debian", "version": "12.11"}
    assert "pkg:deb/debian/tzdata@2025b-0+deb12u1?arch=all&distro=debian-12" in text
    assert "timestamp" not in document["metadata"] and "serialNumber" not in document
    assert sbom.image_sbom(apps.read_app(FIXTURE), rootfs, "/opt/app/venv") == document  # reproducible
