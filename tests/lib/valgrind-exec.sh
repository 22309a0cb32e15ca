#!/usr/bin/env bash
# valgrind-exec.sh BINARY [ARG...]: BINARY under valgrind memcheck, for the valgrind mode of the integration
# tests (cmake -DTELECENTRED_VALGRIND=ON; docs/reliability.md, "Sanitizers and memcheck"). The build's
# wrappers for telecentred and telecentrectl exec this, so the process keeps its PID (valgrind runs the
# program in its own process): a test's `kill -TERM "$daemon_pid"` and `wait` reach the daemon itself.
#
# Each process writes its own log, TC_VALGRIND_LOG_DIR/NAME.PID.log (a forked child such as a libnfc reader
# worker is followed by valgrind and logs under its own PID); tests/lib/valgrind-test.sh scans them after
# the test and fails it on any error or definite leak, whatever exit status the test expected or ignored.
# --error-exitcode also makes the failure visible at once to a test that checks the exit status: 97, a
# status none of our programs uses.
set -euo pipefail

bin=${1:?usage: valgrind-exec.sh BINARY [ARG...]}
shift
dir=${TC_VALGRIND_LOG_DIR:-${TMPDIR:-/tmp}/telecentred-valgrind}
mkdir -p "$dir"

# --leak-check=full --errors-for-leak-kinds=definite --show-leak-kinds=definite: a definite leak is
#   shown and counts as an error; possibly lost and still reachable blocks are neither (a forked worker
#   that _exits leaves its parent's heap behind, reachable). The daemon frees everything at a clean stop
#   ("All heap blocks were freed" without --quiet).
# --quiet: a clean process leaves an empty log; anything valgrind writes (an error, a leak, a warning such
#   as an unhandled system call) is a failure for valgrind-test.sh.
# --track-origins=yes: an uninitialised value's report says where it came from (slower, worth it here).
# --num-callers=30: whole stacks through the event loop.
# --trace-children=no: our programs exec nothing; a fork is followed anyway.
# No suppressions file: none of the third-party libraries (glibc, sqlite, jansson, libmosquitto, OpenSSL,
# libsystemd) raised anything in these runs beyond valgrind's own default suppressions. Add one here
# (--suppressions=, each entry with its reason) only for noise that is not ours.
exec valgrind --tool=memcheck --quiet \
    --leak-check=full --errors-for-leak-kinds=definite --show-leak-kinds=definite \
    --track-origins=yes --num-callers=30 --error-exitcode=97 \
    --log-file="$dir/$(basename "$bin").%p.log" \
    "$bin" "$@"
