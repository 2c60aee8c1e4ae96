#!/bin/sh
# Take one Raft snapshot of Vault into SNAPSHOT_DIR. The first step of the vault-snapshot CronJob
# (components/core/secrets/raft_snapshots.py), in the Vault image (vault CLI, busybox sh);
# tests/core/test_raft_snapshots.py runs this file unchanged against OpenBao.
#
# Environment:
#   VAULT_ADDR       Vault's in-cluster https URL
#   VAULT_CACERT     the CA that signed Vault's certificate (ca.crt of the vault-tls Secret): TLS is verified
#   VAULT_AUTH_PATH  where the Kubernetes auth method is mounted
#   VAULT_ROLE       the snapshot-only role (policy raft-snapshot: read sys/storage/raft/snapshot, nothing else)
#   VAULT_JWT_FILE   the pod's projected ServiceAccount token for the audience "vault"
#   SNAPSHOT_DIR     where the upload step picks the snapshot up
set -eu
umask 077

name="vault-raft-$(date -u +%Y%m%dT%H%M%SZ).snap"
# A batch token holding the snapshot policy alone, valid for minutes, never stored by Vault.
VAULT_TOKEN=$(vault write -field=token "auth/${VAULT_AUTH_PATH}/login" role="${VAULT_ROLE}" jwt=@"${VAULT_JWT_FILE}")
export VAULT_TOKEN
# Written under another name first: the upload step only ever sees a complete snapshot.
vault operator raft snapshot save "${SNAPSHOT_DIR}/${name}.partial"
if [ ! -s "${SNAPSHOT_DIR}/${name}.partial" ]; then
  echo "the snapshot ${name} is empty" >&2
  exit 1
fi
mv "${SNAPSHOT_DIR}/${name}.partial" "${SNAPSHOT_DIR}/${name}"
echo "saved ${name} ($(wc -c < "${SNAPSHOT_DIR}/${name}") bytes)"
