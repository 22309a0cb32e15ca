# shellcheck shell=bash disable=SC2119,SC2120,SC2154  # (optional arguments; $work etc. come from daemon-test.sh)
# Helpers for the tests that talk MQTT: a real mosquitto broker on a free loopback port, mosquitto_sub
# subscribers writing to files, mosquitto_pub, and bounded waits on those files. Source it after
# tests/lib/daemon-test.sh and after setup_work (it uses $work, other_pids, dump_files and fail).
#
#   mqtt_broker_start [CONF_LINE...]   start mosquitto (listener 127.0.0.1 $mqtt_port, anonymous, no
#                                      persistence unless mqtt_persistent=1) plus the caller's lines (TLS,
#                                      password_file, acl_file...); the first start picks the port, later
#                                      ones reuse it
#   mqtt_broker_stop [SIGNAL]          stop it (TERM by default) and wait for it to exit
#   mqtt_broker_restart                stop, then start again on the SAME port with the same config
#   mqtt_sub NAME [ARG...]             a mosquitto_sub -V 5 writing "STAMP RETAIN QOS TOPIC PAYLOAD" lines
#                                      to $work/sub-NAME.out, returned once it is really subscribed; its
#                                      client id is fixed per NAME, so with -c -q 1 and mqtt_persistent=1
#                                      it gets, once it reconnects, what was sent while it was away
#   mqtt_sub_stop [PID]                stop a subscriber (the last one by default)
#   mqtt_pub [ARG...]                  mosquitto_pub -V 5 to the broker
#   mqtt_wait_msg FILE PATTERN [TIMEOUT_S [COUNT]]   like wait_for, on a subscriber's file
#   mqtt_payloads FILE TOPIC           the payloads received on exactly TOPIC, one per line, in order
#   mqtt_last_payload FILE TOPIC       the last of them
#
# mqtt_client_opts (array) is added to every mosquitto_sub and mosquitto_pub run (e.g. --cafile, -u, -P
# for a TLS or password broker: set it before calling mqtt_sub/mqtt_pub). mqtt_host is 127.0.0.1.
# Needs the Debian packages mosquitto and mosquitto-clients.

mqtt_host=127.0.0.1
mqtt_port=
mqtt_broker_pid=
mqtt_broker_conf=
mqtt_broker_log=
mqtt_broker_starts=0
mqtt_client_opts=()
mqtt_probe_n=0

mqtt_require() {
    local tool
    for tool in mosquitto mosquitto_sub mosquitto_pub; do
        command -v "$tool" >/dev/null 2>&1 || PATH=$PATH:/usr/sbin command -v "$tool" >/dev/null 2>&1 ||
            fail "$tool is not installed (Debian packages mosquitto and mosquitto-clients)"
    done
}

# A TCP port nobody listens on now (the kernel's pick; the broker binds it right after).
mqtt_free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# mqtt_broker_start [CONF_LINE...]: the lines go into the config after the listener (per-listener options
# such as cafile/certfile/keyfile/require_certificate/password_file/acl_file apply to it). Waits until the
# broker logs that it runs.
mqtt_broker_start() {
    mqtt_require
    local mosquitto_bin
    mosquitto_bin=$(PATH=$PATH:/usr/sbin command -v mosquitto)
    [[ -n $mqtt_broker_log ]] || mqtt_broker_log=$work/mosquitto.log
    [[ " ${dump_files[*]} " == *" $mqtt_broker_log "* ]] || dump_files+=("$mqtt_broker_log")
    local tries
    for tries in 1 2 3 4 5; do
        if [[ -z $mqtt_port ]] || ((mqtt_broker_starts == 0 && tries > 1)); then
            mqtt_port=$(mqtt_free_port)
        fi
        if (($# > 0)) || [[ -z $mqtt_broker_conf ]]; then
            mqtt_broker_conf=$work/mosquitto.conf
            {
                echo "# written by tests/lib/mqtt-test.sh"
                echo "per_listener_settings true"
                # Run as ourselves: started as root, mosquitto would switch to its own user, which
                # cannot write the work directory nor read key files made by the test.
                echo "user $(id -un)"
                if [[ -n ${mqtt_persistent:-} ]]; then
                    # Sessions and their queued QoS 1 messages survive a restart (saved at a clean stop),
                    # so a subscriber with -c misses nothing while the broker is down.
                    mkdir -p "$work/mosquitto-db"
                    echo "persistence true"
                    echo "persistence_location $work/mosquitto-db/"
                    echo "autosave_interval 0"
                else
                    echo "persistence false"
                fi
                echo "log_dest stderr"
                echo "log_type error"
                echo "log_type warning"
                echo "log_type notice"
                echo "log_type information"
                echo "log_type subscribe"
                echo "connection_messages true"
                echo "log_timestamp_format %H:%M:%S"
                echo "max_queued_messages 1000000"
                echo "listener $mqtt_port $mqtt_host"
                echo "allow_anonymous true"
                local line
                for line in "$@"; do echo "$line"; done
            } >"$mqtt_broker_conf"
        else
            # The same port again: rewrite the listener line only.
            sed -i "s/^listener [0-9]* /listener $mqtt_port /" "$mqtt_broker_conf"
        fi
        local before
        before=$(count "mosquitto version .* running" "$mqtt_broker_log")
        "$mosquitto_bin" -c "$mqtt_broker_conf" 2>>"$mqtt_broker_log" &
        mqtt_broker_pid=$!
        other_pids+=("$mqtt_broker_pid")
        local deadline=$((SECONDS + 10))
        while (($(count "mosquitto version .* running" "$mqtt_broker_log") <= before)); do
            if ! kill -0 "$mqtt_broker_pid" 2>/dev/null; then
                wait "$mqtt_broker_pid" 2>/dev/null || true
                mqtt_broker_pid=
                break
            fi
            ((SECONDS < deadline)) || fail "mosquitto did not start within 10 s"
            sleep 0.02
        done
        if [[ -n $mqtt_broker_pid ]]; then
            mqtt_broker_starts=$((mqtt_broker_starts + 1))
            return 0
        fi
        # Exited at start: the port was taken meanwhile (first start: try another), or the config is bad.
        ((mqtt_broker_starts == 0)) || fail "mosquitto did not restart on port $mqtt_port"
        grep -q "Address already in use" "$mqtt_broker_log" || fail "mosquitto refused to start"
    done
    fail "mosquitto found no free port"
}

mqtt_broker_stop() {
    local sig=${1:-TERM}
    [[ -n $mqtt_broker_pid ]] || return 0
    kill -"$sig" "$mqtt_broker_pid" 2>/dev/null || true
    wait "$mqtt_broker_pid" 2>/dev/null || true
    mqtt_broker_pid=
}

mqtt_broker_restart() {
    mqtt_broker_stop
    mqtt_broker_start
}

# The client options every mosquitto_sub/mosquitto_pub run gets.
mqtt_client_args() {
    printf '%s\n' -V 5 -h "$mqtt_host" -p "$mqtt_port" "${mqtt_client_opts[@]}"
}

mqtt_pub() {
    local args
    mapfile -t args < <(mqtt_client_args)
    timeout 10 mosquitto_pub "${args[@]}" "$@"
}

# mqtt_sub NAME [ARG...]: ARG are mosquitto_sub's (-t TOPIC..., -q 1, ...); the output format is
# "%U %r %q %t %p" (stamp with nanoseconds, retain flag, QoS, topic, payload) unless ARG has its own -F.
# It also subscribes to a probe topic and returns once a probe published there came back, so nothing
# published after mqtt_sub returns can be missed. Sets mqtt_sub_file and mqtt_sub_pid.
mqtt_sub() {
    local name=$1
    shift
    local args
    mapfile -t args < <(mqtt_client_args)
    local fmt=(-F '%U %r %q %t %p')
    local a
    for a in "$@"; do [[ $a == -F ]] && fmt=(); done
    mqtt_sub_file=$work/sub-$name.out
    local probe=mqtt-test/probe/$name
    mosquitto_sub "${args[@]}" -i "mqtt-test-$name-$$" "${fmt[@]}" "$@" -t "$probe" >>"$mqtt_sub_file" \
        2>>"$work/sub-$name.err" &
    mqtt_sub_pid=$!
    other_pids+=("$mqtt_sub_pid")
    dump_files+=("$mqtt_sub_file" "$work/sub-$name.err")
    mqtt_probe_n=$((mqtt_probe_n + 1))
    local marker="probe-$mqtt_probe_n"
    local deadline=$((SECONDS + 10))
    while ! grep -qw -- "$marker" "$mqtt_sub_file" 2>/dev/null; do
        kill -0 "$mqtt_sub_pid" 2>/dev/null || fail "mosquitto_sub $name exited: $(cat "$work/sub-$name.err")"
        ((SECONDS < deadline)) || fail "mosquitto_sub $name did not subscribe within 10 s"
        mqtt_pub -t "$probe" -m "$marker" -q 0 >/dev/null 2>&1 || true
        sleep 0.05
    done
}

mqtt_sub_stop() {
    local pid=${1:-$mqtt_sub_pid}
    [[ -n $pid ]] || return 0
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# mqtt_wait_msg FILE PATTERN [TIMEOUT_S [COUNT]]: PATTERN (grep basic regex) on COUNT lines of FILE.
mqtt_wait_msg() {
    local file=$1 pattern=$2 timeout=${3:-10} want=${4:-1}
    wait_for "$pattern" "$timeout" "$want" "$file"
}

# mqtt_payloads FILE TOPIC: payloads received on exactly TOPIC (default output format), in arrival order.
mqtt_payloads() {
    awk -v t="$2" '$4 == t { sub(/^[^ ]* [^ ]* [^ ]* [^ ]* ?/, ""); print }' "$1"
}

mqtt_last_payload() {
    mqtt_payloads "$1" "$2" | tail -n 1
}

# mqtt_count_topic FILE TOPIC: how many messages arrived on exactly TOPIC.
mqtt_count_topic() {
    awk -v t="$2" '$4 == t { n++ } END { print n + 0 }' "$1" 2>/dev/null || echo 0
}

# mqtt_wait_topic FILE TOPIC [TIMEOUT_S [COUNT]]: until COUNT messages arrived on exactly TOPIC.
mqtt_wait_topic() {
    local file=$1 topic=$2 timeout=${3:-10} want=${4:-1}
    local deadline=$((SECONDS + $(tc_scaled "$timeout")))
    while (($(mqtt_count_topic "$file" "$topic") < want)); do
        ((SECONDS < deadline)) ||
            fail "timed out after ${timeout}s waiting for $want message(s) on $topic in $(basename "$file") (got $(mqtt_count_topic "$file" "$topic"))"
        if [[ -n ${daemon_pid:-} ]] && ! kill -0 "$daemon_pid" 2>/dev/null; then
            fail "the daemon exited while waiting for $topic"
        fi
        sleep 0.02
    done
}

# mqtt_wait_subscribed CLIENT_ID TOPIC_FILTER [TIMEOUT_S [COUNT]]: until the broker logged COUNT
# subscriptions of CLIENT_ID to TOPIC_FILTER (log_type subscribe: "HH:MM:SS: CLIENT QOS FILTER"), so a
# command published after it cannot overtake the subscription. COUNT counts every start of the broker
# (the log is appended to across restarts).
mqtt_wait_subscribed() {
    local client=$1 filter=$2 timeout=${3:-10} want=${4:-1}
    local pattern
    pattern=": $(printf '%s' "$client" | sed 's/[][\.*^$]/\\&/g') [0-2] $(printf '%s' "$filter" | sed 's/[][\.*^$]/\\&/g')\$"
    wait_for "$pattern" "$timeout" "$want" "$mqtt_broker_log"
}
