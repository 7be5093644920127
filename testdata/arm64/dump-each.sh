# Runs inside the arm64 VM (scripts/arm64-vm.sh, busybox sh as root): for each fixture binary
# given as an argument, starts `FIXTURE all` with GOTRACEBACK=system, waits for READY, makes it
# collect garbage (so the GC workers exist) and waits for its answer, takes `goroscope dump
# --system` until no goroutine is running or runnable but the fixture's busy ones (at most
# 200 dumps), then sends SIGQUIT, whose traceback the runtime prints before it exits.
# Prints, per fixture:
#
#   @@CASE <name>@@
#   @@DUMP <goroscope's exit status> <dumps taken> <milliseconds of the last one>@@
#   <the last dump>
#   @@STDERR@@
#   <goroscope's stderr of the last dump>
#   @@TRACEBACK <the fixture's exit status>@@
#   <the fixture's stderr: the traceback>
#   @@END@@
#
# A fixture that never says READY or GC is killed (its case then has no dump).

# Milliseconds since boot.
now_ms() {
    awk '{ printf "%d\n", $1 * 1000 }' /proc/uptime
}

# Waits up to 60 s for a line starting with $1 in /tmp/fx.out while the fixture $pid lives.
wait_line() {
    i=0
    while ! grep -q "^$1" /tmp/fx.out; do
        kill -0 "$pid" 2>/dev/null || return 1
        i=$((i + 1))
        [ $i -le 600 ] || return 1
        sleep 0.1
    done
}

# Whether the dump in /tmp/dump has no running or runnable goroutine but those with a frame
# of a function named in the fixture's `INFO running FUNC` lines.
settled() {
    grep '^INFO running ' /tmp/fx.out | awk '{ print $3 }' >/tmp/busy
    awk '
        FNR == NR { busy[$1] = 1; next }
        /^goroutine [0-9]+ \[/ {
            if (active && !seen) bad = 1
            st = $0; sub(/^goroutine [0-9]+ \[/, "", st)
            active = (st ~ /^running/ || st ~ /^runnable/); seen = 0; next
        }
        /^[^\t ]/ { f = $0; sub(/\(.*$/, "", f); if (f in busy) seen = 1 }
        END { if (active && !seen) bad = 1; exit bad }
    ' /tmp/busy /tmp/dump
}

for fx in "$@"; do
    name=$(basename "$fx")
    echo "@@CASE $name@@"
    rm -f /tmp/in /tmp/fx.out /tmp/fx.err /tmp/dump /tmp/dump.err
    mkfifo /tmp/in
    GOTRACEBACK=system "$fx" all </tmp/in >/tmp/fx.out 2>/tmp/fx.err &
    pid=$!
    exec 3>/tmp/in
    if wait_line READY && echo gc >&3 && wait_line GC; then
        n=0
        while :; do
            n=$((n + 1))
            t0=$(now_ms)
            goroscope dump --system "$pid" >/tmp/dump 2>/tmp/dump.err
            status=$?
            t1=$(now_ms)
            [ $status = 0 ] || break
            settled && break
            [ $n -lt 200 ] || break
            sleep 0.01
        done
        echo "@@DUMP $status $n $((t1 - t0))@@"
        cat /tmp/dump
        echo "@@STDERR@@"
        cat /tmp/dump.err
        kill -QUIT "$pid"
    else
        kill -KILL "$pid" 2>/dev/null
    fi
    wait "$pid"
    echo "@@TRACEBACK $?@@"
    exec 3>&-
    cat /tmp/fx.err
    echo "@@END@@"
done
