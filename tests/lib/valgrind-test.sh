#!/usr/bin/env bash
# valgrind-test.sh NAME SCRIPT: one integration test in the valgrind mode (cmake -DTELECENTRED_VALGRIND=ON,
# which points TELECENTRED and TELECENTRECTL at wrappers that exec tests/lib/valgrind-exec.sh). Runs
# SCRIPT, then reads every valgrind log its processes wrote (TC_VALGRIND_LOG_DIR, one file a process) and
# fails the test on any error or definite leak in any of them: also in a process whose exit status the
# test ignores (a daemon stopped in the cleanup, a forked reader worker) or expects to be non-zero (a
# refused command in cli.sh). The logs are written with --quiet: a clean process leaves an empty log, so
# a log with any text in it is a failure. A process killed with SIGKILL leaves no leak report (nothing to
# check, fine), but the errors it met before are in its log.
set -uo pipefail

name=${1:?usage: valgrind-test.sh NAME SCRIPT}
script=${2:?usage: valgrind-test.sh NAME SCRIPT}
: "${TC_BINARY_DIR:?set TC_BINARY_DIR to the build tree}"

export TC_VALGRIND_LOG_DIR=$TC_BINARY_DIR/valgrind-logs/$name
rm -rf "$TC_VALGRIND_LOG_DIR"
mkdir -p "$TC_VALGRIND_LOG_DIR"
# Writable by all, as /tmp (sticky): a test may start a program as another user (security_unprivileged
# runs the daemon as nobody), and valgrind opens its log as that user.
chmod 1777 "$TC_VALGRIND_LOG_DIR"

bash "$script"
status=$?

# Processes still running under valgrind (a reader worker that outlives a SIGKILLed daemon by a moment):
# their leak report is written as they exit. Wait for them, bounded.
logs() { find "$TC_VALGRIND_LOG_DIR" -name '*.log' -type f | LC_ALL=C sort; }
running() {
    local f pid
    while read -r f; do
        pid=${f%.log}
        pid=${pid##*.}
        if [[ -r /proc/$pid/cmdline ]] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q valgrind; then
            echo "$pid"
        fi
    done < <(logs)
}
deadline=$((SECONDS + 60))
while [[ -n $(running) ]]; do
    if ((SECONDS >= deadline)); then
        echo "FAIL: valgrind: processes still running 60 s after the test ended: $(running | tr '\n' ' ')" >&2
        status=1
        break
    fi
    sleep 0.1
done

n=0
bad=0
while read -r f; do
    [[ -n $f ]] || continue
    n=$((n + 1))
    if [[ -s $f ]]; then
        bad=$((bad + 1))
        echo "---- valgrind: $(basename "$f") ----" >&2
        cat "$f" >&2
    fi
done < <(logs)
echo "valgrind: $n process(es) ran under memcheck, $bad with errors or definite leaks (logs: $TC_VALGRIND_LOG_DIR)"
if ((bad > 0)); then
    echo "FAIL: valgrind found errors or definite leaks in $bad process(es) of $name" >&2
    exit 1
fi
if ((status == 0 && n == 0)); then
    # The test ran nothing under valgrind: it belongs on the exclusion list in tests/CMakeLists.txt.
    echo "FAIL: $name started no process under valgrind" >&2
    exit 1
fi
exit "$status"
