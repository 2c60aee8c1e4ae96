"""Build one app's OCI image without a Docker daemon and without pulling a base image.

Steps (each a function below, so a failure names its step):
1. wheels: the lock's wheels downloaded with ``pip download --require-hashes --no-deps --only-binary``,
   the app's own wheel (and any local path requirement, e.g. apps/common) built with ``uv build`` whose
   build back-ends are hash-locked (tools/images/build-constraints.txt);
2. root filesystem: ``mmdebstrap --variant=essential`` from Debian's signed archive (apt checks the
   Release signatures with the machine's debian-archive-keyring) plus ``python3``; a customize hook
   (tools/images/customize.sh) creates the venv, installs the wheels with ``pip install --require-hashes
   --no-deps --no-index`` (pip runs from its own hash-locked wheel and is not left behind) and adds the
   non-root user;
3. SBOM: the venv through ``cyclonedx-py environment`` and the Debian packages from the dpkg status;
4. image: a sorted, clamped tar of the root filesystem added to ``buildah from scratch`` (vfs storage,
   chroot isolation), configured (UID 10001, command, environment for a read-only root filesystem) and
   committed with ``--timestamp SOURCE_DATE_EPOCH`` into an OCI layout.

``SOURCE_DATE_EPOCH`` (the git commit's time) fixes every timestamp, so two builds of one commit from the
same archive state give the same manifest digest (tests/images/test_image_build.py builds twice).
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from tools.images import sbom
from tools.images.apps import VENV, App

HERE = Path(__file__).resolve().parent
PROJECT_ROOT = HERE.parents[1]
SUITE = "bookworm"               # Debian 12: its python3 is 3.11, the Python the locks are compiled for
MIRROR = "http://deb.debian.org/debian"
UID = 10001
# Wheels are chosen for the image, not for the build host: CPython 3.11 on glibc 2.36 (Debian 12), x86_64.
# pip does not widen an explicit manylinux_2_X platform to older glibc versions itself, so every
# manylinux tag the image's glibc accepts is listed (PEP 600 names and the legacy PEP 513/571/599 aliases).
IMAGE_GLIBC_MINOR = 36
WHEEL_PLATFORMS = ([f"manylinux_2_{minor}_x86_64" for minor in range(IMAGE_GLIBC_MINOR, 4, -1)]
                   + ["manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64"])
WHEEL_TARGET = ["--python-version", "3.11", "--implementation", "cp", "--abi", "cp311", "--abi", "abi3", "--abi", "none",
                *[arg for platform in WHEEL_PLATFORMS for arg in ("--platform", platform)]]
# libstdc++6: manylinux wheels may link the system's libstdc++ (it is on the manylinux policy's list of
# libraries a wheel may expect; grpcio, the OTLP exporter's transport, does). The customize hook fails the
# build if any other shared library a wheel needs is missing.
INCLUDE = ("python3", "ca-certificates", "libstdc++6")
# Documentation and translations are not needed at run time; dpkg never unpacks them.
PATH_EXCLUDES = ("/usr/share/doc/*", "/usr/share/man/*", "/usr/share/info/*", "/usr/share/locale/*", "/usr/share/lintian/*")
MERGED_USR_HOOK = "/usr/share/mmdebstrap/hooks/merged-usr"
# apt verifies the archive's Release signatures with Debian's own keyring (package debian-archive-keyring),
# named explicitly so a build host of another distribution (a CI runner) checks the same keys.
DEBIAN_KEYRING = Path("/usr/share/keyrings/debian-archive-keyring.gpg")


class BuildError(RuntimeError):
    """A build step failed; the message names the app, the step and the tool's output."""


@dataclass(frozen=True)
class BuildResult:
    app: str
    version: str
    digest: str                  # the OCI manifest digest (what a registry reports after skopeo --preserve-digests)
    layout: str                  # the OCI layout folder holding the image (tag = app version)
    sbom: str                    # the CycloneDX JSON file
    sbom_digest: str
    compressed_size: int         # config + layers, as pushed
    rootfs_size: int             # the unpacked root filesystem
    seconds: float
    source_date_epoch: int
    git_commit: str              # the commit built (HEAD; a dirty tree is named as such)

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2, sort_keys=True) + "\n", encoding="utf-8")


def source_date_epoch(repo: Path = PROJECT_ROOT) -> int:
    """The commit time of HEAD: every timestamp in the image is this (or older)."""
    if os.environ.get("SOURCE_DATE_EPOCH"):
        return int(os.environ["SOURCE_DATE_EPOCH"])
    out = subprocess.run(["git", "-C", str(repo), "log", "-1", "--format=%ct"], capture_output=True, text=True, check=True)
    return int(out.stdout.strip())


def git_commit(repo: Path = PROJECT_ROOT) -> str:
    """HEAD, or HEAD marked ``+uncommitted-changes`` when what goes into images differs from it: tracked
    edits anywhere, or untracked files under apps/ and tools/images/ (a new app not yet committed)."""
    head = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    tracked = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True).stdout
    inputs = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--", "apps", "tools/images"], capture_output=True, text=True).stdout
    return head + ("+uncommitted-changes" if (tracked + inputs).strip() else "")


def _run(step: str, app: str, cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    if done.returncode != 0:
        raise BuildError(f"{app}: {step} failed ({' '.join(cmd[:3])} ...):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return done


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _logical_lines(text: str) -> list[str]:
    """Requirement lines with their backslash continuations joined, comments dropped."""
    joined = re.sub(r"\\\s*\n", " ", text)
    return [" ".join(line.split(" #")[0].split()) for line in joined.splitlines() if line.strip() and not line.lstrip().startswith("#")]


LOCAL = re.compile(r"^(?:-e\s+)?(?:[A-Za-z0-9_.-]+(?:\[[^\]]*\])?\s*@\s*)?(?P<path>file:\S+|\.{1,2}/\S*|/\S+)$")


def build_wheel(app: str, folder: Path, out: Path, epoch: int) -> Path:
    """The project's wheel from a clean copy of its folder, its build back-end hash-checked."""
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / folder.name
        shutil.copytree(folder, copy, ignore=shutil.ignore_patterns("tests", "build", "dist", "*.egg-info", "__pycache__", ".*"))
        before = set(out.glob("*.whl"))
        _run("wheel build", app, [str(Path(sys.executable).with_name("uv")), "build", "--wheel", "--no-build-logs",
                                 "--build-constraints", str(HERE / "build-constraints.txt"), "--require-hashes",
                                 "--out-dir", str(out), str(copy)], env={**os.environ, "SOURCE_DATE_EPOCH": str(epoch)})
    built = sorted(set(out.glob("*.whl")) - before)
    if len(built) != 1:
        raise BuildError(f"{app}: wheel build of {folder} produced {len(built)} wheels")
    return built[0]


def _project(folder: Path) -> dict:
    import tomllib
    return tomllib.loads((folder / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_name(line: str) -> str:
    return _normalized(re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", line).group(0))


def sibling_projects(app: App) -> dict[str, Path]:
    """Projects beside the app (apps/common beside apps/identity), by normalized project name."""
    found = {}
    for pyproject in sorted(app.folder.parent.glob("*/pyproject.toml")):
        if pyproject.parent != app.folder:
            try:
                found[_normalized(_project(pyproject.parent)["name"])] = pyproject.parent
            except (KeyError, ValueError):
                continue
    return found


def install_requirements(app: App, wheels: Path, epoch: int) -> str:
    """The requirements file pip installs in the image, every line hash-pinned: the lock; local path
    requirements and sibling projects the lock leaves out (apps/common, locked with ``--no-emit-package``)
    as wheels built from their folders; and the app itself."""
    lines: list[str] = []
    locked: set[str] = set()

    def add_local(folder: Path) -> None:
        wheel = build_wheel(app.name, folder, wheels, epoch)
        project = _project(folder)
        locked.add(_normalized(project["name"]))
        lines.append(f"{project['name']}=={project['version']} --hash=sha256:{sha256_file(wheel)}")

    for line in _logical_lines(app.lock.read_text(encoding="utf-8")):
        local = LOCAL.match(line)
        if local and "--hash=" not in line:
            raw = local.group("path").removeprefix("file://").removeprefix("file:")
            folder = (app.folder / raw).resolve() if not raw.startswith("/") else Path(raw)
            if not (folder / "pyproject.toml").is_file():
                raise BuildError(f"{app.lock}: local requirement {line!r} is not a project folder")
            add_local(folder)
        elif line.startswith("-"):
            raise BuildError(f"{app.lock}: option line {line!r} is not allowed in a lock the image installs")
        else:
            locked.add(_requirement_name(line))
            lines.append(line)
    siblings = sibling_projects(app)
    pending = [app.folder]
    while pending:
        for dependency in _project(pending.pop()).get("dependencies", []):
            name = _requirement_name(dependency)
            if name in locked:
                continue
            if name not in siblings:
                raise BuildError(f"{app.lock}: dependency {dependency!r} of {app.project} is neither locked nor a "
                                 f"project beside {app.folder.name} under {app.folder.parent}")
            add_local(siblings[name])
            pending.append(siblings[name])
    wheel = build_wheel(app.name, app.folder, wheels, epoch)
    lines.append(f"{app.project}=={app.version} --hash=sha256:{sha256_file(wheel)}")
    return "\n".join(lines) + "\n"


def fetch_wheels(app: App, wheels: Path, epoch: int) -> None:
    """Locked wheels from PyPI (hash-checked by pip) and pip's own wheel for the install step."""
    for lock in (app.lock, HERE / "installer.lock"):
        _run("wheel download", app.name, [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
                                           "--require-hashes", "--no-deps", "--only-binary=:all:", *WHEEL_TARGET,
                                           "-r", str(lock), "-d", str(wheels)])
    (wheels / "install.txt").write_text(install_requirements(app, wheels, epoch), encoding="utf-8")


def root_filesystem(app: App, wheels: Path, rootfs: Path, epoch: int, mirror: str = MIRROR) -> None:
    """mmdebstrap's essential variant plus python3, the venv and the user, into ``rootfs``."""
    if not DEBIAN_KEYRING.is_file():
        raise BuildError(f"{app.name}: {DEBIAN_KEYRING} is missing (install debian-archive-keyring): the archive cannot be verified")
    cmd = ["mmdebstrap", "--mode=root", "--variant=essential", f"--keyring={DEBIAN_KEYRING}", f"--hook-dir={MERGED_USR_HOOK}",
           f"--include={','.join(INCLUDE)}", *[f"--dpkgopt=path-exclude={p}" for p in PATH_EXCLUDES],
           f"--customize-hook={HERE / 'customize.sh'} \"$1\"", SUITE, str(rootfs), mirror]
    env = {**os.environ, "SOURCE_DATE_EPOCH": str(epoch), "SOMA_WHEELS": str(wheels), "SOMA_VENV": VENV, "SOMA_UID": str(UID)}
    _run("root filesystem (mmdebstrap)", app.name, cmd, env=env)


def _tar(rootfs: Path, tarball: Path, epoch: int) -> None:
    """A byte-stable tar: sorted names, numeric owners, mtimes clamped, no atime/ctime."""
    _run("root filesystem tar", rootfs.name, ["tar", "--sort=name", f"--mtime=@{epoch}", "--clamp-mtime", "--numeric-owner",
                                              "--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime",
                                              "-C", str(rootfs), "-cf", str(tarball), "."])


def assemble(app: App, tarball: Path, layout: Path, storage: Path, epoch: int) -> None:
    """buildah (vfs, chroot) from scratch: one layer, the non-root user, a read-only-friendly config."""
    buildah = ["buildah", "--storage-driver", "vfs", "--root", str(storage / "root"), "--runroot", str(storage / "run")]
    container = _run("buildah from", app.name, [*buildah, "from", "--isolation", "chroot", "scratch"]).stdout.strip()
    try:
        _run("buildah add", app.name, [*buildah, "add", container, str(tarball), "/"])
        config = [f"--user={UID}:{UID}", "--workingdir=/", "--cmd", json.dumps(list(app.command)),
                  "--env", f"PATH={VENV}/bin:/usr/bin", "--env", "PYTHONDONTWRITEBYTECODE=1", "--env", "PYTHONUNBUFFERED=1",
                  "--env", "HOME=/tmp", "--env", "TMPDIR=/tmp",
                  "--label", f"org.opencontainers.image.title={app.name}",
                  "--label", f"org.opencontainers.image.version={app.version}"]
        _run("buildah config", app.name, [*buildah, "config", *config, container])
        if layout.exists():
            shutil.rmtree(layout)
        _run("buildah commit", app.name, [*buildah, "commit", "--timestamp", str(epoch), "--format", "oci",
                                          "--disable-compression=false", container,
                                          f"oci:{layout}:{app.version}"])
    finally:
        subprocess.run([*buildah, "rm", container], capture_output=True)
        subprocess.run([*buildah, "rmi", "--all", "--force"], capture_output=True)


def manifest(layout: Path) -> tuple[str, dict]:
    """The manifest digest recorded in the layout's index, and the manifest itself."""
    index = json.loads((layout / "index.json").read_text())
    digest = index["manifests"][0]["digest"]
    blob = layout / "blobs" / "sha256" / digest.removeprefix("sha256:")
    return digest, json.loads(blob.read_text())


def _clear(work: Path) -> None:
    """Remove a previous build's folder, refusing while anything is still mounted under it (an interrupted
    mmdebstrap leaves /proc, /sys and /dev mounts in its root filesystem; deleting through them is unsafe)."""
    if not work.exists():
        return
    prefix = str(work.resolve()) + "/"
    mounted = [line.split()[1] for line in Path("/proc/self/mounts").read_text().splitlines()
               if line.split()[1].startswith(prefix)]
    if mounted:
        raise BuildError(f"{work}: still mounted from an interrupted build ({', '.join(sorted(mounted))}); "
                         f"unmount them (umount -R {work}/rootfs) and build again")
    shutil.rmtree(work)


def _du(path: Path) -> int:
    return sum(p.lstat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def build(app: App, out: Path, epoch: int | None = None, mirror: str = MIRROR) -> BuildResult:
    """Build ``app`` into ``out/<app>/`` (oci/, sbom.cdx.json, build.json); returns what was built."""
    epoch = source_date_epoch() if epoch is None else epoch
    started = time.monotonic()
    work = out / app.name
    _clear(work)
    wheels, rootfs = work / "wheels", work / "rootfs"
    wheels.mkdir(parents=True)
    fetch_wheels(app, wheels, epoch)
    root_filesystem(app, wheels, rootfs, epoch, mirror)
    document = sbom.image_sbom(app, rootfs, VENV)
    sbom_file = work / "sbom.cdx.json"
    sbom_file.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    tarball = work / "rootfs.tar"
    _tar(rootfs, tarball, epoch)
    rootfs_size = _du(rootfs)
    shutil.rmtree(rootfs)
    assemble(app, tarball, work / "oci", work / "storage", epoch)
    tarball.unlink()
    shutil.rmtree(work / "storage", ignore_errors=True)
    shutil.rmtree(wheels)
    digest, body = manifest(work / "oci")
    result = BuildResult(app=app.name, version=app.version, digest=digest, layout=str(work / "oci"), sbom=str(sbom_file),
                         sbom_digest="sha256:" + sha256_file(sbom_file),
                         compressed_size=body["config"]["size"] + sum(layer["size"] for layer in body["layers"]),
                         rootfs_size=rootfs_size, seconds=round(time.monotonic() - started, 1), source_date_epoch=epoch,
                         git_commit=git_commit())
    result.write(work / "build.json")
    return result
