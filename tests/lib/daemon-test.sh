# Helpers shared by the integration tests that run telecentred and read its log. Source it, then call
# setup_work NAME: it makes $work (removed at exit, with every process of the test killed), $conf and
# $log. Keep the daemon's PID in daemon_pid (empty while it is not running) and other processes in
# other_pids; dump_files lists more files to show when a check fails. Waits are bounded polls on files,
# never fixed sleeps standing in for an event.

: "${TELECENTRED:?set TELECENTRED to the telecentred binary}"
: "${TELECENTRECTL:?set TELECENTRECTL to the telecentrectl binary}"

daemon_pid=
other_pids=()
dump_files=()

setup_work() {
    work=$(mktemp -d "${TMPDIR:-/tmp}/telecentred-$1.XXXXXX")
    conf=$work/telecentred.conf
    log=$work/daemon.log
    trap cleanup_work EXIT
}

cleanup_work() {
    local pid
    for pid in "$daemon_pid" "${other_pids[@]}"; do
        if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
            kill -KILL "$pid" 2>/dev/null || true
            wait "$pid" 2>/dev/null || true
        fi
    done
    rm -rf "$work"
}

fail() {
    echo "FAIL: $*" >&2
    local f
    for f in "$log" "${dump_files[@]}"; do
        if [[ -s $f ]]; then
            echo "---- $(basename "$f") ----" >&2
            tail -n 80 "$f" >&2
        fi
    done
    exit 1
}

pass() {
    echo "ok: $*"
}

# count PATTERN [FILE]: occurrences in the log (or FILE); 0 also while the file does not exist yet, so
# that a wait never ends on an empty count.
count() {
    local n
    n=$(grep -c -- "$1" "${2:-$log}" 2>/dev/null) || true
    echo "${n:-0}"
}

# TC_TIMEOUT_SCALE (a whole number, 1 by default): every bound below is multiplied by it. The valgrind
# mode sets it (tests/CMakeLists.txt): the programs run 20-50x slower there, and a bound is only an upper
# limit, so a larger one costs a passing run nothing. tc_scaled N prints N scaled, for a test's own bounds.
tc_timeout_scale=${TC_TIMEOUT_SCALE:-1}
tc_scaled() {
    echo $(($1 * tc_timeout_scale))
}

# wait_for PATTERN [TIMEOUT_S [MIN_COUNT [FILE]]]: until PATTERN occurs MIN_COUNT times in the log (or
# FILE); fails on the timeout or if the daemon exits meanwhile.
wait_for() {
    local pattern=$1 timeout=$((${2:-10} * tc_timeout_scale)) want=${3:-1} file=${4:-$log}
    local deadline=$((SECONDS + timeout))
    while (($(count "$pattern" "$file") < want)); do
        if ((SECONDS >= deadline)); then
            fail "timed out after ${timeout}s waiting for '$pattern' (x$want) in $(basename "$file")"
        fi
        if [[ -n ${daemon_pid:-} ]] && ! kill -0 "$daemon_pid" 2>/dev/null; then
            fail "the daemon exited while waiting for '$pattern'"
        fi
        sleep 0.02
    done
}

expect_count() {
    local pattern=$1 want=$2 got
    got=$(count "$pattern")
    ((got == want)) || fail "'$pattern' seen $got times, expected $want"
}

# write_fifo FIFO TEXT: a FIFO write blocks until a reader has it open; bound it, so a dead daemon fails
# the test quickly.
write_fifo() {
    # shellcheck disable=SC2016  # $1 and $2 are the inner shell's
    timeout "$(tc_scaled 5)" bash -c 'printf "%s" "$1" > "$2"' _ "$2" "$1" || fail "cannot write to $1"
}
