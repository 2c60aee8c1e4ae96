#!/bin/sh
# mmdebstrap customize hook (tools/images/build.py): turns the essential root filesystem into the app's.
# $1 is the root filesystem; SOMA_WHEELS holds the hash-locked wheels, pip's wheel and install.txt.
# Runs pip from its own wheel inside the chroot, so the venv's paths are the image's paths and pip is
# not left in the image. SOURCE_DATE_EPOCH makes the .pyc files hash-checked (byte-stable).
set -eu
ROOT=$1
: "${SOMA_WHEELS:?}" "${SOMA_VENV:?}" "${SOMA_UID:?}" "${SOURCE_DATE_EPOCH:?}"
STAGE=/tmp/soma-wheels
mkdir -p "$ROOT$STAGE"
cp "$SOMA_WHEELS"/*.whl "$SOMA_WHEELS"/install.txt "$ROOT$STAGE/"
PIP_WHEEL=$(cd "$ROOT$STAGE" && ls pip-*.whl)
chroot "$ROOT" /usr/bin/python3 -m venv --without-pip "$SOMA_VENV"
# venv writes the command that made it; keep the file free of build paths
sed -i '/^command = /d' "$ROOT$SOMA_VENV/pyvenv.cfg"
chroot "$ROOT" /usr/bin/env -i PATH=/usr/bin SOURCE_DATE_EPOCH="$SOURCE_DATE_EPOCH" PYTHONHASHSEED=0 \
  "$SOMA_VENV/bin/python" "$STAGE/$PIP_WHEEL/pip" install --quiet --disable-pip-version-check --no-cache-dir \
  --no-index --find-links "$STAGE" --require-hashes --no-deps --no-warn-script-location -r "$STAGE/install.txt"
rm -rf "$ROOT$STAGE"
# Every shared library the installed wheels link must be in the image (ldd inside the chroot). A library that
# auditwheel vendored into a wheel's <package>.libs/ folder may name a sibling it was vendored with (scipy's
# libgfortran names libquadmath-<hash>.so): the extension that loads them finds both there, so a name that is a
# file beside the library counts as present. The image test then imports every module to prove it at run time.
MISSING=$(cd "$ROOT" && find ".$SOMA_VENV" -type f \( -name '*.so' -o -name '*.so.*' \) | sed 's|^\.||' | sort |
  while read -r lib; do
    chroot "$ROOT" /usr/bin/ldd "$lib" 2>/dev/null | awk -v lib="$lib" '/not found/ {print lib " needs " $1}' |
      while read -r needing _ name; do
        [ -e "$ROOT$(dirname "$needing")/$name" ] || echo "$needing needs $name"
      done
  done)
if [ -n "$MISSING" ]; then
  echo "shared libraries the wheels need are not in the image (add their Debian packages to INCLUDE in tools/images/build.py):" >&2
  echo "$MISSING" >&2
  exit 1
fi
# The non-root user the image runs as; no login shell, no home (HOME=/tmp, an emptyDir in the pod).
echo "app:x:$SOMA_UID:$SOMA_UID:app:/nonexistent:/usr/sbin/nologin" >> "$ROOT/etc/passwd"
echo "app:x:$SOMA_UID:" >> "$ROOT/etc/group"
# With a read-only root filesystem only the mounted /tmp is writable; nothing else may need writing.
chmod 1777 "$ROOT/tmp"
