#!/usr/bin/env bash
# Find (or start) the real servers the tests use: PostgreSQL and Redis on 127.0.0.1.
# Says clearly what is missing; tests that need a missing server fail with that message.
set -u
pg_ok() { (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null; }
redis_ok() { (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null; }

if ! pg_ok; then
  if command -v pg_ctlcluster >/dev/null 2>&1 && ls /etc/postgresql >/dev/null 2>&1; then
    echo "services: starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
    sleep 2
  fi
fi
if ! redis_ok; then
  if command -v redis-server >/dev/null 2>&1; then
    echo "services: starting Redis"
    redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no >/dev/null || true
    sleep 1
  fi
fi
# Debian's Chromium renders the HTML reports in the browser tests (headless).
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "services: installing Debian's chromium for the browser tests"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null 2>&1 \
    || { apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null 2>&1; } \
    || true
fi
pg_ok && echo "services: PostgreSQL at 127.0.0.1:5432 is up" \
  || echo "services: MISSING PostgreSQL at 127.0.0.1:5432 (install postgresql, trust auth); PostgreSQL tests will fail"
redis_ok && echo "services: Redis at 127.0.0.1:6379 is up" \
  || echo "services: MISSING Redis at 127.0.0.1:6379 (install redis-server); Redis tests will fail"
command -v chromium >/dev/null 2>&1 && echo "services: chromium at $(command -v chromium)" \
  || echo "services: MISSING chromium (apt-get install chromium); the browser tests will fail"
exit 0
