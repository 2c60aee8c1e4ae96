#!/bin/sh
# The release pipeline's tools (docs/apps-pipeline.md): Debian 12's mmdebstrap (root filesystems from
# Debian's signed archive), buildah (OCI assembly, vfs storage and chroot isolation), skopeo (push and
# read back by digest) and docker-registry (the local OCI registry the tests sign in), plus Debian 13's
# cosign under <destination>/bin (tools/fetch_cosign.sh; Debian 12's skopeo and buildah have sigstore
# signing compiled out). The Debian 12 tools are installed with apt-get rather than unpacked: buildah
# and skopeo need containers-common's /etc/containers/policy.json and registries configuration, and
# mmdebstrap runs apt, dpkg and the merged-usr hook from their installed paths.
# Usage: sh tools/fetch_image_tools.sh [destination, default .tools]
set -eu
DEST=${1:-.tools}
MISSING=""
for tool in mmdebstrap buildah skopeo docker-registry; do
  command -v "$tool" >/dev/null 2>&1 || MISSING="$MISSING $tool"
done
if [ -n "$MISSING" ]; then
  # shellcheck disable=SC2086
  apt-get install -y -qq --no-install-recommends $MISSING >/dev/null 2>&1 \
    || { apt-get update -qq && apt-get install -y -qq --no-install-recommends $MISSING >/dev/null; }
fi
sh "$(dirname "$0")/fetch_cosign.sh" "$DEST"
echo "mmdebstrap $(mmdebstrap --version | cut -d' ' -f2), $(buildah --version | cut -d' ' -f1-3), $(skopeo --version)"
