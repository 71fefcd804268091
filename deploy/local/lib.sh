# shellcheck shell=bash
# Helpers shared by the local cluster launchers (sourced, not run).

# A launcher's failure: the message on stderr, then exit 1.
die() {
  echo "$launcher: $*" >&2
  exit 1
}

# What every launcher needs first, for launcher $1: root (the workspace),
# bin (GRIDCAP_BIN or the release build), logs (target/$1), the browser
# client's directory (GRIDCAP_WEB_ROOT, exported) and haproxy (its path).
launcher_init() {
  launcher=$1
  root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
  bin=${GRIDCAP_BIN:-$root/target/release/gridcap}
  logs=$root/target/$launcher
  export GRIDCAP_WEB_ROOT=${GRIDCAP_WEB_ROOT:-$root/web-client/dist}
  [[ -x $bin ]] || die "no gridcap binary at $bin: run \`cargo build --release -p gridcap-server\` or set GRIDCAP_BIN"
  haproxy=$(PATH=$PATH:/usr/sbin:/sbin command -v haproxy) ||
    die "HAProxy is not installed (Debian: apt-get install haproxy)"
  [[ -f $GRIDCAP_WEB_ROOT/index.html ]] ||
    echo "$launcher: no browser client in $GRIDCAP_WEB_ROOT (build it with \`make web\`); the nodes serve a placeholder page" >&2
}

# Whether something accepts connections on 127.0.0.1:$1.
listening() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Sets REPLY to a port nothing listens on, from $1 upwards, skipping the
# ones already handed out (no command substitution: it would run in a
# subshell and forget them).
taken=" "
free_port() {
  local port=$1
  while listening "$port" || [[ $taken == *" $port "* ]]; do
    port=$((port + 1))
  done
  taken+="$port "
  REPLY=$port
}

# The HTTP status of GET $2 on 127.0.0.1:$1 (empty if nothing answers).
http_status() {
  local line
  {
    exec 3<>"/dev/tcp/127.0.0.1/$1" &&
      printf 'GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' "$2" >&3 &&
      IFS=' ' read -r -t 2 _ line _ <&3 &&
      echo "$line"
  } 2>/dev/null || true
}

# Waits (10 s at most) until every port in "$@" answers GET /readyz with
# 200. Dies with the log tail of any process of the caller's `pids` (named
# by `names`, logging to $logs/<name>.log) that exits meanwhile.
wait_ready() {
  local ready p i
  for _ in $(seq 100); do
    ready=0
    for p in "$@"; do
      [[ $(http_status "$p" /readyz) == 200 ]] && ready=$((ready + 1))
    done
    ((ready == $#)) && return 0
    for i in "${!pids[@]}"; do
      if ! kill -0 "${pids[$i]}" 2>/dev/null; then
        tail -n 5 "$logs/${names[$i]}.log" >&2
        die "${names[$i]} exited at start (its log: $logs/${names[$i]}.log)"
      fi
    done
    sleep 0.1
  done
  die "not ready after 10 s; see the logs in $logs"
}
