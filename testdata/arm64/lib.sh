# Shell functions of the scripts that run inside the arm64 VM (live-each.sh, safety.sh), which
# source it from their own directory. The fixture's pid is $pid, its stdout /tmp/fx.out.

# Milliseconds since boot.
now_ms() {
    awk '{ printf "%d\n", $1 * 1000 }' /proc/uptime
}

# Waits for the Nth line starting with $1 in /tmp/fx.out ($2: N, default 1) while the fixture
# lives, polling at most 6000 times 10 ms apart.
wait_line() {
    i=0
    while [ "$(grep -c "^$1" /tmp/fx.out)" -lt "${2:-1}" ]; do
        kill -0 "$pid" 2>/dev/null || return 1
        i=$((i + 1))
        [ $i -le 6000 ] || return 1
        sleep 0.01
    done
}
