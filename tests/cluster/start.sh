#!/usr/bin/env bash
# Start a single-node SLURM for the test suite: munge, MariaDB, slurmdbd, slurmctld, slurmd,
# with two fake GPUs (gres/gpu) and two partitions (gpu, default; cpu).
#
#   tests/cluster/start.sh STATE_DIR    # STATE_DIR: fresh, its parents traversable by 'mysql'
#
# Installs the Debian packages when missing (apt-get), writes /etc/slurm/{slurm,gres,slurmdbd}.conf
# from the templates beside this script (SLURM's job steps read only /etc/slurm/slurm.conf), starts
# every daemon in the foreground flag, backgrounded, and records "NAME PID" in STATE_DIR/pids:
# tests/cluster/stop.sh STATE_DIR stops exactly those. Exit status: 0 up; 2 this machine cannot
# host it (not root, no apt-get, a foreign SLURM config); 1 a start failed (the logs are printed).
set -euo pipefail

STATE=$(realpath -m "${1:?usage: start.sh STATE_DIR}")
HERE=$(cd "$(dirname "$0")" && pwd)
MARK="written by vocflow tests/cluster/start.sh"
POINTER=/run/vocflow-test-slurm.state   # STATE_DIR of the cluster this script started last
PACKAGES="slurmctld slurmd slurm-client munge slurmdbd mariadb-server"
DB=$STATE/db
SOCK=$DB/mysqld.sock

cannot() { echo "start.sh: cannot host a test cluster here: $*" >&2; exit 2; }
say() { echo "start.sh [$(date +%T)] $*"; }

show_logs() {
    for f in "$STATE"/*.log "$STATE"/*.out "$DB"/*.err; do
        [ -f "$f" ] && { echo "---- $f"; tail -n 30 "$f"; }
    done
}

fail() { echo "start.sh: $*" >&2; show_logs >&2; exit 1; }

# wait_for SECONDS WHAT CMD...: poll CMD every 0.3 s until it succeeds.
wait_for() {
    local seconds=$1 what=$2
    shift 2
    local deadline=$((SECONDS + seconds))
    until "$@" >/dev/null 2>&1; do
        [ $SECONDS -lt "$deadline" ] || fail "$what did not come up within ${seconds}s"
        sleep 0.3
    done
}

record() { echo "$1 $2" >>"$STATE/pids"; }

check_machine() {
    [ "$(id -u)" = 0 ] || cannot "needs root (installs packages, writes /etc/slurm)"
    if [ -e /etc/slurm/slurm.conf ] && ! grep -q "$MARK" /etc/slurm/slurm.conf; then
        cannot "/etc/slurm/slurm.conf belongs to a real SLURM installation; not touching it"
    fi
    if [ -s "$POINTER" ] && [ -f "$(cat "$POINTER")/pids" ]; then
        say "stopping the test cluster an earlier session left running ($(cat "$POINTER"))"
        "$HERE/stop.sh" "$(cat "$POINTER")" || true
    fi
}

install_packages() {
    local missing="" p
    for p in $PACKAGES; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
            || missing="$missing $p"
    done
    [ -z "$missing" ] && return 0
    command -v apt-get >/dev/null || cannot "SLURM is not installed and there is no apt-get"
    say "installing$missing"
    export DEBIAN_FRONTEND=noninteractive
    # policy-rc.d may deny the packages' own service starts: harmless, nothing starts by itself.
    # shellcheck disable=SC2086
    if ! apt-get install -y --no-install-recommends $missing >"$STATE/apt.out" 2>&1; then
        apt-get update >>"$STATE/apt.out" 2>&1 \
            && apt-get install -y --no-install-recommends $missing >>"$STATE/apt.out" 2>&1 \
            || { tail -n 20 "$STATE/apt.out" >&2; cannot "apt-get install$missing failed"; }
    fi
}

write_configs() {
    local node hw
    node=$(hostname -s)
    # "CPUs=2 Boards=1 SocketsPerBoard=1 CoresPerSocket=2 ThreadsPerCore=1 RealMemory=23988"
    hw=$(slurmd -C | head -n 1 | grep -o 'CPUs=.*RealMemory=[0-9]*') || fail "slurmd -C failed"
    mkdir -p /etc/slurm
    for name in slurm gres slurmdbd; do
        sed -e "s|@NODE@|$node|g" -e "s|@STATE@|$STATE|g" -e "s|@HW@|$hw|g" \
            "$HERE/$name.conf.in" >"/etc/slurm/$name.conf"
    done
    chmod 600 /etc/slurm/slurmdbd.conf
    echo "$node"
}

start_munge() {
    if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
        say "munged already running (not ours, left alone)"
        return 0
    fi
    if [ ! -s /etc/munge/munge.key ]; then
        mungekey --create
        chown munge:munge /etc/munge/munge.key
        chmod 400 /etc/munge/munge.key
    fi
    install -d -o munge -g munge -m 755 /run/munge
    setpriv --reuid=munge --regid=munge --init-groups /usr/sbin/munged -F \
        </dev/null >"$STATE/munged.out" 2>&1 &
    record munged $!
    wait_for 20 munged sh -c 'munge -n | unmunge'
}

start_mariadb() {
    install -d -o mysql -g mysql -m 750 "$DB"
    mariadb-install-db --user=mysql --datadir="$DB" --skip-test-db \
        --auth-root-authentication-method=socket >"$STATE/mariadb-install.out" 2>&1 \
        || fail "mariadb-install-db failed"
    setpriv --reuid=mysql --regid=mysql --init-groups /usr/sbin/mariadbd --no-defaults \
        --datadir="$DB" --socket="$SOCK" --pid-file="$DB/mariadbd.pid" \
        --bind-address=127.0.0.1 --port=3316 --log-error="$STATE/mariadbd.log" \
        </dev/null >"$STATE/mariadbd.out" 2>&1 &
    record mariadbd $!
    wait_for 60 mariadbd mariadb --socket="$SOCK" -e 'SELECT 1'
    local user
    for user in "'slurm'@'localhost'" "'slurm'@'127.0.0.1'"; do
        mariadb --socket="$SOCK" -e "CREATE USER IF NOT EXISTS $user IDENTIFIED BY 'slurm';
            GRANT ALL ON slurm_acct_db.* TO $user;"
    done
}

start_slurm() {
    local node=$1
    slurmdbd -D </dev/null >"$STATE/slurmdbd.out" 2>&1 &
    record slurmdbd $!
    wait_for 60 slurmdbd sacctmgr -n list cluster
    sacctmgr -i add cluster ci >/dev/null
    slurmctld -D -c -i </dev/null >"$STATE/slurmctld.out" 2>&1 &
    record slurmctld $!
    wait_for 30 slurmctld scontrol ping
    slurmd -D </dev/null >"$STATE/slurmd.out" 2>&1 &
    record slurmd $!
    wait_for 30 "slurmd (node $node idle)" sh -c "sinfo -h -n $node -o %T | grep -qx idle"
}

main() {
    check_machine
    mkdir -p "$STATE/ctld" "$STATE/d"
    chmod 755 "$STATE"
    : >"$STATE/pids"
    install_packages
    local node
    node=$(write_configs)
    local i
    for i in 0 1; do
        [ -c "$STATE/fakegpu$i" ] || mknod -m 666 "$STATE/fakegpu$i" c 1 3
    done
    echo "$STATE" >"$POINTER"
    start_munge
    start_mariadb
    start_slurm "$node"
    say "SLURM up on $node: $(sinfo -h -o '%P %G %c CPUs' | tr '\n' ';') state in $STATE"
}

main
