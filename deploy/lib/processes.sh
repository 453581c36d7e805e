# Processes a demo or a bench starts, and how they are stopped: by PID, however the script exits.
# Source it, then:
#   start_in_ns NS LOG CMD...   run CMD inside network namespace NS, stdout and stderr to LOG (appended);
#                               LAST_PID is its PID (`ip netns exec` execs in place, so it is the program's)
#   start_bg LOG CMD...         the same on the host
#   stop_pid PID                SIGTERM, up to 5 s, then SIGKILL; reaped
#   stop_all                    stop_pid every process started so far, the newest first
# A function must not be backgrounded with `&` to start a daemon: $! would be the subshell's PID, and
# stopping it would leave the daemon running.

PIDS=()

start_in_ns() {
  local ns=$1 log=$2; shift 2
  ip netns exec "$ns" "$@" >>"$log" 2>&1 &
  LAST_PID=$!
  PIDS+=("$LAST_PID")
}

start_bg() {
  local log=$1; shift
  "$@" >>"$log" 2>&1 &
  LAST_PID=$!
  PIDS+=("$LAST_PID")
}

stop_pid() {
  local pid=$1
  kill -TERM "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null; return 0; }
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

stop_all() {
  local i
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do stop_pid "${PIDS[$i]}"; done
  PIDS=()
}
