# Runs inside the arm64 VM (scripts/arm64-vm.sh, busybox sh as root) after live-each.sh:
#
#   sh safety.sh FIXTURE KILLS DUMPS
#
# 1. `FIXTURE all`: one dump's wall time measured, then KILLS times goroscope SIGKILLed after a
#    random delay (busybox's $RANDOM): in odd runs a `dump`, below that time from its start; in
#    even runs an `attach --hold` session (the target stopped until it ends), once it is seen
#    tracing the target and a SIGUSR1 was sent to the target, below 50 ms later. After each
#    kill: whether goroscope held the target at that moment (its TracerPid), whether every thread of the target runs untraced within 2 s,
#    whether the fixture answers a ping, and the status of the next dump. Prints `@@KILLS@@`,
#    then a line a run: `<run> <delay us> <held 0|1> <goroscope's status> <running 0|1>
#    <pong 0|1> <next dump's status>`; after the last run that next dump (@@KILL-DUMP@@) and
#    the fixture's INFO lines and runtime.Stack right after it (@@KILL-STACK@@);
#    `@@USR1 <sent during holds> <counted by the fixture>@@`; and
#    `@@KILLS-MS <milliseconds>@@`, the time the part took.
# 2. `FIXTURE signals` with GODEBUG=asyncpreemptoff=1: DUMPS dumps in a row in the background
#    while the foreground sends SIGUSR1, SIGURG and SIGCHLD, waiting after each round until the
#    fixture counted all three (at most 10 s). Prints `@@SIGNALS <rounds sent> <usr1> <urg> <chld>
#    <dumps failed> <dumps after which the target was not running>@@` (the counts as the
#    fixture gives them at the end), then `@@SIGNALS-MS <milliseconds>@@`.

fx=$1
kills=$2
dumps=$3

. "$(dirname "$0")/lib.sh"

# Whether no thread of $pid is stopped (State t or T) or traced.
running() {
    for s in /proc/"$pid"/task/*/status; do
        awk '/^State:/ && $2 ~ /^[tT]/ { bad = 1 }
             /^TracerPid:/ && $2 != 0 { bad = 1 }
             END { exit bad }' "$s" 2>/dev/null || return 1
    done
}

# The TracerPid of $pid (read by the shell itself: polled fast).
tracer() {
    while read -r key value; do
        if [ "$key" = TracerPid: ]; then
            echo "$value"
            return
        fi
    done </proc/"$pid"/status
}

# Waits until goroscope $gs traces $pid, or it has exited (at most 30 s).
wait_traced() {
    i=0
    while [ $i -lt 3000 ] && [ "$(tracer)" != "$gs" ] && kill -0 "$gs" 2>/dev/null; do
        i=$((i + 1))
        sleep 0.01
    done
}

# Starts the fixture ($@: scenario and environment assignments before it) with stdin on fd 3.
start() {
    rm -f /tmp/in /tmp/fx.out
    mkfifo /tmp/in
    env "$@" </tmp/in >/tmp/fx.out 2>/tmp/fx.err &
    pid=$!
    exec 3>/tmp/in
    wait_line READY
}

stop() {
    echo quit >&3
    exec 3>&-
    wait "$pid"
}

# 1. SIGKILL of goroscope at random moments.
part=$(now_ms)
start "$fx" all
t0=$(now_ms)
goroscope dump -q "$pid" >/dev/null
t1=$(now_ms)
wall_us=$(((t1 - t0) * 1000))
[ $wall_us -gt 0 ] || wall_us=1000
pongs=0
usr1=0
run=0
echo "@@KILLS@@"
while [ $run -lt "$kills" ]; do
    run=$((run + 1))
    held=0
    if [ $((run % 2)) = 1 ]; then
        goroscope dump -q "$pid" >/dev/null 2>&1 &
        gs=$!
        delay=$(((RANDOM * 32768 + RANDOM) % wall_us))
        sleep "$(printf '%d.%06d' $((delay / 1000000)) $((delay % 1000000)))"
        [ "$(tracer)" = "$gs" ] && held=1
    else
        # A session that holds the target stopped until its input ends (which it never does
        # here): SIGUSR1 sent while it holds, then the SIGKILL a moment later.
        rm -f /tmp/session.in
        mkfifo /tmp/session.in
        goroscope attach --hold -q --batch - "$pid" </tmp/session.in >/dev/null 2>&1 &
        gs=$!
        exec 4>/tmp/session.in
        wait_traced
        [ "$(tracer)" = "$gs" ] && held=1
        kill -USR1 "$pid"
        usr1=$((usr1 + 1))
        delay=$((RANDOM % 50000))
        sleep "$(printf '0.%06d' "$delay")"
    fi
    kill -KILL "$gs" 2>/dev/null
    wait "$gs"
    gs_status=$?
    exec 4>&-
    ok=0
    i=0
    while [ $i -lt 200 ]; do
        if running; then
            ok=1
            break
        fi
        i=$((i + 1))
        sleep 0.01
    done
    pongs=$((pongs + 1))
    echo ping >&3
    pong=0
    wait_line PONG $pongs && pong=1
    goroscope dump -q "$pid" >/tmp/next 2>/tmp/next.err
    next=$?
    echo "$run $delay $held $gs_status $ok $pong $next"
done
# Every SIGUSR1 sent while a session held the target was delivered (counted: `SIGNALS n`).
echo signals >&3
wait_line SIGNALS
echo "@@USR1 $usr1 $(grep '^SIGNALS' /tmp/fx.out | tail -n 1 | cut -d' ' -f2)@@"
echo stack >&3
wait_line "END STACK"
echo "@@KILL-DUMP@@"
cat /tmp/next /tmp/next.err
echo "@@KILL-STACK@@"
grep '^INFO ' /tmp/fx.out
sed -n '/^BEGIN STACK$/,/^END STACK$/p' /tmp/fx.out | sed '1d;$d'
stop
echo "@@KILLS-MS $(($(now_ms) - part))@@"

# 2. Signals sent during dumps.
part=$(now_ms)
start GODEBUG=asyncpreemptoff=1 "$fx" signals
rm -f /tmp/dumps.done /tmp/dumps.bad /tmp/dumps.stopped
(
    n=0
    while [ $n -lt "$dumps" ]; do
        n=$((n + 1))
        goroscope dump -q "$pid" >/dev/null 2>&1 || echo "$n" >>/tmp/dumps.bad
        running || echo "$n" >>/tmp/dumps.stopped
    done
    : >/tmp/dumps.done
) &
dumper=$!
sent=0
asked=0
while [ ! -e /tmp/dumps.done ]; do
    kill -USR1 "$pid"
    kill -URG "$pid"
    kill -CHLD "$pid"
    sent=$((sent + 1))
    t0=$(now_ms)
    while :; do
        asked=$((asked + 1))
        echo sigcounts >&3
        wait_line SIGCOUNTS $asked || break
        [ "$(grep '^SIGCOUNTS' /tmp/fx.out | tail -n 1)" = "SIGCOUNTS $sent $sent $sent" ] && break
        [ $(($(now_ms) - t0)) -lt 10000 ] || break 2
    done
done
wait "$dumper"
asked=$((asked + 1))
echo sigcounts >&3
wait_line SIGCOUNTS $asked
echo "@@SIGNALS $sent $(grep '^SIGCOUNTS' /tmp/fx.out | tail -n 1 | cut -d' ' -f2-) $(cat /tmp/dumps.bad 2>/dev/null | wc -l) $(cat /tmp/dumps.stopped 2>/dev/null | wc -l)@@"
stop
echo "@@SIGNALS-MS $(($(now_ms) - part))@@"
