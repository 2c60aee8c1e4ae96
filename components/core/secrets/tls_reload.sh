#!/bin/sh
# tls-reload: make Vault serve a renewed certificate without restarting it (a restarted Vault is
# sealed). Vault reads its listener's certificate and key at start and again on SIGHUP, never by
# itself. This loop runs beside Vault in the same pod (shareProcessNamespace, same user): every
# CHECK_INTERVAL_SECONDS it hashes the certificate files in TLS_DIR (the mounted vault-tls Secret,
# which the kubelet swaps in when cert-manager renews it) and, when they changed, sends SIGHUP to
# the process named PROCESS_NAME. A signal that finds no process is retried at the next check.
# POSIX sh and busybox applets only (sha256sum, pkill, sleep): the Vault image is Alpine-based.
set -eu

dir="${TLS_DIR:?TLS_DIR names the folder holding tls.crt, tls.key and ca.crt}"
interval="${CHECK_INTERVAL_SECONDS:-30}"
process="${PROCESS_NAME:-vault}"

fingerprint() {
  cat "$dir/tls.crt" "$dir/tls.key" "$dir/ca.crt" 2>/dev/null | sha256sum
}

seen="$(fingerprint)"
echo "tls-reload: watching $dir every ${interval}s for process $process"
while sleep "$interval"; do
  now="$(fingerprint)"
  [ "$now" = "$seen" ] && continue
  if pkill -HUP -x "$process"; then
    echo "tls-reload: certificate files changed; sent SIGHUP to $process"
    seen="$now"
  else
    echo "tls-reload: certificate files changed, but no process $process to signal; retrying" >&2
  fi
done
