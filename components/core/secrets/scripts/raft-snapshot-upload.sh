#!/bin/sh
# Upload the snapshot the first step left in SNAPSHOT_DIR to the backup target. The main container
# of the vault-snapshot CronJob (components/core/secrets/raft_snapshots.py), in the MinIO image,
# which ships mc.
#
# Environment:
#   S3_ENDPOINT            the target's URL (the off-cluster https endpoint, or the in-cluster MinIO)
#   S3_BUCKET, S3_PREFIX   the snapshot lands at <bucket>/<prefix>vault-raft-<UTC time>.snap
#   MC_REGION              the bucket's region (mc reads it from the environment)
#   MC_CONFIG_DIR          a writable folder for mc's alias (the root filesystem is read-only)
#   S3_ACCESS_KEY_ID, S3_SECRET_ACCESS_KEY
#                          the writer's keys (an ESO-managed Secret), handed to mc on its standard
#                          input, never as arguments
#   SNAPSHOT_DIR           where the first step saved the snapshot
set -eu

set -- "${SNAPSHOT_DIR}"/vault-raft-*.snap
if [ "$#" -ne 1 ] || [ ! -s "$1" ]; then
  echo "expected one complete snapshot in ${SNAPSHOT_DIR}, found: $*" >&2
  exit 1
fi
name=${1##*/}
printf '%s\n%s\n' "${S3_ACCESS_KEY_ID}" "${S3_SECRET_ACCESS_KEY}" | mc alias set target "${S3_ENDPOINT}" --api S3v4
mc cp --quiet "$1" "target/${S3_BUCKET}/${S3_PREFIX}${name}"
echo "uploaded ${name} to ${S3_BUCKET}/${S3_PREFIX}${name}"
