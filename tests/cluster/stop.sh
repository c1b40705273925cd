#!/usr/bin/env bash
# Stop the test cluster that tests/cluster/start.sh STATE_DIR started: cancel what is left in
# its queue, then TERM (KILL after 15 s) exactly the daemons recorded in STATE_DIR/pids, newest
# first. A recorded PID that now belongs to another program is left alone. The /etc/slurm configs
# start.sh wrote (its mark in their first line) are removed.
#
#   tests/cluster/stop.sh STATE_DIR
set -uo pipefail

STATE=$(realpath -m "${1:?usage: stop.sh STATE_DIR}")
POINTER=/run/vocflow-test-slurm.state
MARK="written by vocflow tests/cluster/start.sh"  # first line of the configs start.sh writes
[ -f "$STATE/pids" ] || { echo "stop.sh: no $STATE/pids; nothing to stop"; exit 0; }

say() { echo "stop.sh [$(date +%T)] $*"; }

# Is PID still the (living) daemon NAME we started? (/proc/PID/comm is cut to 15 characters;
# an exited daemon may linger as a zombie until its parent reaps it.)
ours() {
    [ "$(cat "/proc/$2/comm" 2>/dev/null)" = "${1:0:15}" ] \
        && ! grep -q '^State:[[:space:]]*Z' "/proc/$2/status" 2>/dev/null
}

stop_one() {
    local name=$1 pid=$2 i
    for i in $(seq 1 50); do
        ours "$name" "$pid" || { say "$name ($pid) stopped"; return 0; }
        sleep 0.3
    done
    say "$name ($pid) ignored TERM for 15 s; KILL"
    kill -KILL "$pid" 2>/dev/null
}

if grep -q '^slurmctld ' "$STATE/pids" && timeout 10 scontrol ping >/dev/null 2>&1; then
    jobs=$(timeout 10 squeue -h -o %i 2>/dev/null | tr '\n' ' ')
    [ -n "${jobs// /}" ] && { say "cancelling jobs $jobs"; timeout 10 scancel $jobs; }
fi

# TERM all at once (newest first), then wait for each: slurmctld alone needs ~3 s to exit.
tac "$STATE/pids" | while read -r name pid; do
    ours "$name" "$pid" && kill -TERM "$pid" 2>/dev/null
done
tac "$STATE/pids" | while read -r name pid; do
    stop_one "$name" "$pid"
done
# The configs start.sh wrote go too (only files with its mark): with a slurm.conf naming a
# controller that is gone, every later `scontrol show config` waits ~9 s for it, and the SLURM
# executor plugin runs that command each time any Snakemake starts on this machine.
if [ "$(cat "$POINTER" 2>/dev/null)" = "$STATE" ]; then
    rm -f "$POINTER"
    for name in slurm gres slurmdbd; do
        grep -qs "$MARK" "/etc/slurm/$name.conf" \
            && rm -f "/etc/slurm/$name.conf"
    done
fi
# Processes of this cluster's jobs carry SLURM_CLUSTER_NAME=ci; any still alive escaped SLURM's
# process tracking. Named (not killed: they were never recorded here) for the caller to see.
leftover=$(grep -lsz '^SLURM_CLUSTER_NAME=ci$' /proc/[0-9]*/environ | cut -d/ -f3 | tr '\n' ' ')
[ -n "$leftover" ] && echo "stop.sh: processes of test jobs still alive: $leftover" >&2
mv "$STATE/pids" "$STATE/pids.stopped"
exit 0
