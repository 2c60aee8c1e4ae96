#!/bin/sh
# Puts Debian's redis-server (with the two libraries it needs that the machine lacks) under .tools for the
# gateway's rate-limit tests (apps/gateway/tests), without installing anything: the packages come from the
# machine's own apt sources (Debian 12, signed archive) with `apt-get download` into a private cache and are
# unpacked with `dpkg-deb -x`; no service is registered or started. `.tools/bin/redis-server` is a wrapper
# that points the loader at `.tools/lib/redis`.
# Usage: sh tools/fetch_redis.sh [destination, default .tools]
set -eu
DEST=${1:-.tools}
if command -v redis-server >/dev/null 2>&1 && [ ! -e "$DEST/bin/redis-server" ]; then
  mkdir -p "$DEST/bin" && ln -sf "$(command -v redis-server)" "$DEST/bin/redis-server"
fi
if [ ! -x "$DEST/bin/redis-server" ]; then
  WORK=$(mktemp -d)
  trap 'rm -rf "$WORK"' EXIT
  mkdir -p "$WORK/lists/partial" "$WORK/cache/archives/partial"
  APT="-o Dir::Cache=$WORK/cache -o APT::Sandbox::User=root -qq"
  # shellcheck disable=SC2086
  (cd "$WORK" && { apt-get $APT download redis-tools libjemalloc2 liblzf1 2>/dev/null || \
     { apt-get $APT -o Dir::State::Lists="$WORK/lists" update && \
       apt-get $APT -o Dir::State::Lists="$WORK/lists" download redis-tools libjemalloc2 liblzf1; }; })
  for deb in "$WORK"/*.deb; do dpkg-deb -x "$deb" "$WORK/root"; done
  mkdir -p "$DEST/bin" "$DEST/lib/redis"
  DEST_ABS=$(cd "$DEST" && pwd)
  cp "$WORK/root/usr/bin/redis-check-rdb" "$DEST_ABS/lib/redis/redis-server"   # Debian's redis-server is this binary
  cp -P "$WORK"/root/usr/lib/x86_64-linux-gnu/libjemalloc.so.2 "$WORK"/root/usr/lib/x86_64-linux-gnu/liblzf.so.1* "$DEST_ABS/lib/redis/"
  cat > "$DEST_ABS/bin/redis-server" <<'WRAP'
#!/bin/sh
# Debian's redis-server (redis-check-rdb picks its role from its own name) with the unpacked libraries
LIB=$(cd "$(dirname "$0")/../lib/redis" && pwd)
LD_LIBRARY_PATH="$LIB${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" exec "$LIB/redis-server" "$@"
WRAP
  chmod +x "$DEST_ABS/bin/redis-server"
fi
"$DEST/bin/redis-server" --version
