#!/usr/bin/env bash
# Manual tool (not part of `make test`): smoke-test released IB API clients against ibot.sim.
# One throwaway venv per Python client under $CLIENT_MATRIX_DIR (default /tmp/clientmatrix), built on first
# use; ibot comes from this checkout's src/ on PYTHONPATH (the simulator needs only numpy at run time).
# npm clients (requirements "npm:PKG@VERSION") go to $CLIENT_MATRIX_DIR/node/node_modules (npm install on
# first use); their smoke script runs under node, the simulator in run_node.py (this checkout's venv python).
# Usage: scripts/client_matrix/run.sh [NAME...]   (NAME: a row's first column, e.g. ib_async-1.0.3)
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
VENVS=${CLIENT_MATRIX_DIR:-/tmp/clientmatrix}
PY=${PYTHON:-python3.11}

# name | pip requirements (or npm:PKG@VERSION) | smoke script | its argument (the module to import)
CLIENTS=(
  "ib_async-1.0.3|ib_async==1.0.3|smoke_insync.py|ib_async"
  "ib_async-2.0.1|ib_async==2.0.1|smoke_insync.py|ib_async"
  "ib_async-2.1.0|ib_async==2.1.0|smoke_insync.py|ib_async"
  "ib_insync-0.9.70|ib_insync==0.9.70|smoke_insync.py|ib_insync"
  "ib_insync-0.9.86|ib_insync==0.9.86|smoke_insync.py|ib_insync"
  "nautilus-ibapi-10.19.4|nautilus-ibapi==10.19.4 protobuf|smoke_ibapi.py|ibapi"
  "nautilus-ibapi-10.30.1|nautilus-ibapi==10.30.1 protobuf|smoke_ibapi.py|ibapi"
  "nautilus-ibapi-10.37.2|nautilus-ibapi==10.37.2 protobuf|smoke_ibapi.py|ibapi"
  "nautilus-ibapi-10.43.2|nautilus-ibapi==10.43.2 protobuf|smoke_ibapi.py|ibapi"
  "nautilus-ibapi-10.46.1|nautilus-ibapi==10.46.1 protobuf|smoke_ibapi.py|ibapi"
  "ib-api-0.9.70|ib-api==0.9.70|smoke_ibpy.py|ib"
  "stoqey-ib-1.6.10|npm:@stoqey/ib@1.6.10|smoke_stoqey.mjs|-"
  "node-ib-0.2.9|npm:ib@0.2.9|smoke_nodeib.mjs|-"
)
NODE_DIR=$VENVS/node
LAUNCH_PY=$ROOT/.venv/bin/python  # runs the simulator for the node scripts (needs ibot's dependencies)
[[ -x $LAUNCH_PY ]] || LAUNCH_PY=$PY

build() {  # venv for one client, once
  local dir=$1 reqs=$2
  [[ -f $dir/.ready ]] && return 0
  rm -rf "$dir" && "$PY" -m venv "$dir" || return 1
  # shellcheck disable=SC2086  # the requirements are words
  "$dir/bin/pip" install -q --disable-pip-version-check numpy $reqs >"$dir.pip.log" 2>&1 || return 1
  touch "$dir/.ready"
}

build_npm() {  # one npm package (name@version) into $NODE_DIR, once
  local spec=$1 pkg=${1%@*} version=${1##*@}
  local have
  have=$(node -p "require('$NODE_DIR/node_modules/$pkg/package.json').version" 2>/dev/null)
  [[ $have == "$version" ]] && return 0
  mkdir -p "$NODE_DIR" || return 1
  [[ -f $NODE_DIR/package.json ]] || echo '{"private": true}' >"$NODE_DIR/package.json"
  npm install --prefix "$NODE_DIR" --no-audit --no-fund "$spec" >"$NODE_DIR.npm.log" 2>&1
}

mkdir -p "$VENVS"
rows=()
for row in "${CLIENTS[@]}"; do
  IFS='|' read -r name reqs script module <<<"$row"
  if (($#)) && [[ " $* " != *" $name "* ]]; then continue; fi
  dir=$VENVS/$name
  log=$VENVS/$name.log
  echo "=== $name"
  if [[ $reqs == npm:* ]]; then
    if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
      echo "skipped: node and npm are needed for this row"; rows+=("$name|skipped|0|0"); continue
    fi
    if ! build_npm "${reqs#npm:}"; then
      echo "npm install failed (see $NODE_DIR.npm.log)"; rows+=("$name|install failed|0|1"); continue
    fi
    PYTHONPATH="$ROOT/src:$HERE" timeout 300 "$LAUNCH_PY" "$HERE/run_node.py" "$HERE/$script" \
      "$NODE_DIR/node_modules" 2>"$log.err" | tee "$log"
  else
    if ! build "$dir" "$reqs"; then
      echo "pip install failed (see $dir.pip.log)"; rows+=("$name|install failed|0|1"); continue
    fi
    PYTHONPATH="$ROOT/src:$HERE" timeout 300 "$dir/bin/python" "$HERE/$script" "$module" 2>"$log.err" | tee "$log"
  fi
  # the smoke script's last line: RESULT <negotiated server version> <passed> <failed>
  result=$(grep '^RESULT ' "$log" | tail -1)
  read -r _ server passed failed <<<"${result:-RESULT crashed(see_$log.err) 0 1}"
  rows+=("$name|$server|$passed|$failed")
done

echo
printf '%-16s %-8s %-10s %5s %5s\n' client version server_ver pass fail
for r in "${rows[@]}"; do
  IFS='|' read -r name server passed failed <<<"$r"
  printf '%-16s %-8s %-10s %5s %5s\n' "${name%-*}" "${name##*-}" "$server" "$passed" "$failed"
done
