# Runs inside the arm64 VM (scripts/arm64-vm.sh, busybox sh as root): for each fixture binary
# given as an argument, starts `FIXTURE all` with GOTRACEBACK=crash, waits for READY, makes it
# collect garbage (so the GC workers exist) and waits for its answer, then, one after another:
#
#   NONBLOCKING  `goroscope dump --nonblocking`, then STACK: the fixture's own runtime.Stack,
#                and INFO: the fixture's INFO lines
#   ATTACH       `goroscope attach --batch -`: grs, gr P, bt, frame 1, gr B, bt, threads
#                (P: the goroutine in main.chanRecvBlocked, B: the one in main.busySpin)
#   GRS, BT, THREADS   `goroscope grs -t`, `goroscope bt PID B`, `goroscope threads`
#   DUMP         `goroscope dump --system` until no goroutine is running or runnable but the
#                fixture's busy ones (at most 200 dumps; the header line also gives the number
#                of dumps and the milliseconds of the last one)
#   CORE         `goroscope snapshot PID -o /get/<name>.gsnap --core /get/<name>.core` (both
#                files go back to the host, the core gzipped: mostly zeros, 80 MB raw)
#
# and sends SIGQUIT, whose crash traceback (every goroutine, then each thread's own running
# goroutine) the runtime prints before it aborts. Prints, per fixture:
#
#   @@CASE <name>@@
#   @@<SECTION> <exit status> [...]@@ then its stdout, @@<SECTION>-ERR@@ then its stderr
#   @@TRACEBACK <the fixture's exit status>@@ then the fixture's stderr
#   @@MS <milliseconds the case took>@@
#   @@END@@
#
# A fixture that never says READY or GC is killed (its case then has only the traceback).

. "$(dirname "$0")/lib.sh"

# Runs goroscope with the arguments given, prints section $1 with its output and status.
section() {
    sect=$1
    shift
    goroscope "$@" >/tmp/out 2>/tmp/err </tmp/stdin
    echo "@@$sect $?@@"
    cat /tmp/out
    echo "@@$sect-ERR@@"
    cat /tmp/err
}

# The id of the goroutine with a frame of function $1 in the traceback /tmp/stack.
goid_in() {
    awk -v f="$1(" '
        /^goroutine [0-9]+ / { id = $2 }
        index($0, f) == 1 { print id; exit }
    ' /tmp/stack
}

# Whether the dump in /tmp/dump has no running or runnable goroutine but those with a frame
# of a function named in the fixture's `INFO running FUNC` lines.
settled() {
    grep '^INFO running ' /tmp/fx.out | awk '{ print $3 }' >/tmp/busy
    awk '
        FNR == NR { busy[$1] = 1; next }
        /^goroutine [0-9]+ \[/ || /^goroutine [0-9]+ gp=/ {
            if (active && !seen) bad = 1
            st = $0; sub(/^[^[]*\[/, "", st)
            active = (st ~ /^running/ || st ~ /^runnable/); seen = 0; next
        }
        /^[^\t ]/ { f = $0; sub(/\(.*$/, "", f); if (f in busy) seen = 1 }
        END { if (active && !seen) bad = 1; exit bad }
    ' /tmp/busy /tmp/dump
}

mkdir -p /get
: >/tmp/stdin
for fx in "$@"; do
    name=$(basename "$fx")
    echo "@@CASE $name@@"
    t_case=$(now_ms)
    rm -f /tmp/in /tmp/fx.out /tmp/fx.err /tmp/dump /tmp/dump.err /tmp/stack
    mkfifo /tmp/in
    GOTRACEBACK=crash "$fx" all </tmp/in >/tmp/fx.out 2>/tmp/fx.err &
    pid=$!
    exec 3>/tmp/in
    if wait_line READY && echo gc >&3 && wait_line GC; then
        section NONBLOCKING dump --nonblocking "$pid"
        echo stack >&3
        wait_line "END STACK"
        sed -n '/^BEGIN STACK$/,/^END STACK$/p' /tmp/fx.out | sed '1d;$d' >/tmp/stack
        echo "@@STACK@@"
        cat /tmp/stack
        echo "@@INFO@@"
        grep '^INFO ' /tmp/fx.out
        parked=$(goid_in main.chanRecvBlocked)
        busy=$(goid_in main.busySpin)
        printf 'grs\ngr %s\nbt\nframe 1\ngr %s\nbt\nthreads\n' "$parked" "$busy" >/tmp/stdin
        section ATTACH attach --batch - "$pid"
        : >/tmp/stdin
        section GRS grs -t "$pid"
        section BT bt "$pid" "$busy"
        section THREADS threads "$pid"
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
        section CORE snapshot -q "$pid" -o "/get/$name.gsnap" --core "/get/$name.core"
        gzip "/get/$name.core"
        kill -QUIT "$pid"
        echo "@@DUMP $status $n $((t1 - t0))@@"
        cat /tmp/dump
        echo "@@DUMP-ERR@@"
        cat /tmp/dump.err
    else
        kill -KILL "$pid" 2>/dev/null
    fi
    wait "$pid"
    echo "@@TRACEBACK $?@@"
    exec 3>&-
    cat /tmp/fx.err
    echo "@@MS $(($(now_ms) - t_case))@@"
    echo "@@END@@"
done
