# Runs inside the arm64 VM (scripts/arm64-vm.sh, busybox sh as root), after live-each.sh in the
# same boot: the fixture binary given as the argument (the newest toolchain's default build) in
# its "values" scenario, then `goroscope bt --full --json` of every goroutine that reported the
# truth of its variables. Prints:
#
#   @@CASE values@@
#   @@INFO@@ then the fixture's INFO lines (the truths)
#   @@VALUES-<goid> <exit status>@@ then bt's stdout, @@VALUES-<goid>-ERR@@ then its stderr
#   @@MS <milliseconds the case took>@@
#   @@END@@

. "$(dirname "$0")/lib.sh"

fx=$1
echo "@@CASE values@@"
t_case=$(now_ms)
rm -f /tmp/in /tmp/fx.out /tmp/fx.err
mkfifo /tmp/in
"$fx" values </tmp/in >/tmp/fx.out 2>/tmp/fx.err &
pid=$!
exec 3>/tmp/in
if wait_line READY; then
    echo "@@INFO@@"
    grep '^INFO ' /tmp/fx.out
    for g in $(grep '^INFO value ' /tmp/fx.out | awk '{ print $3 }' | sort -u); do
        goroscope bt -q --full --json "$pid" "$g" >/tmp/out 2>/tmp/err </dev/null
        echo "@@VALUES-$g $?@@"
        cat /tmp/out
        echo "@@VALUES-$g-ERR@@"
        cat /tmp/err
    done
    echo quit >&3
else
    kill -KILL "$pid" 2>/dev/null
fi
exec 3>&-
wait "$pid"
echo "@@MS $(($(now_ms) - t_case))@@"
echo "@@END@@"
