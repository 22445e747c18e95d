#!/usr/bin/env bash
# A real single-node SLURM cluster on this Debian machine, for the tests marked `slurm` and for trying
# `msgan train -m hydra/launcher=slurm ...` locally. Run as root.
#   scripts/slurm_cluster.sh start   # install (apt) if needed, configure, start munge, MariaDB,
#                                    # slurmdbd (accounting: submitit polls sacct), slurmctld, slurmd
#   scripts/slurm_cluster.sh stop    # stop every daemon by the pid in its pid file
# Loopback only; state, spool, logs and pid files under $SLURM_SCRATCH (default /tmp/msgan-slurm).
# Why these settings (accounting, sched_interval, daemons started by hand): docs/cluster.md#local-cluster
# (about 11 s from a clean machine).
set -euo pipefail
scratch="${SLURM_SCRATCH:-/tmp/msgan-slurm}"
host="$(hostname -s)"

install_packages() {
  command -v slurmctld >/dev/null && command -v slurmdbd >/dev/null && command -v mariadbd >/dev/null && return
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y --no-install-recommends slurmctld slurmd slurm-client slurmdbd munge mariadb-server >/dev/null \
    || { apt-get update >/dev/null && apt-get install -y --no-install-recommends slurmctld slurmd slurm-client slurmdbd munge mariadb-server >/dev/null; }
}

write_config() {
  mkdir -p "$scratch"/{state,spool,log,run} /etc/slurm
  local cpus memory
  cpus="$(nproc)"
  memory=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 1024 ))
  cat > /etc/slurm/slurm.conf <<EOF
ClusterName=msgan
SlurmctldHost=${host}(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MailProg=/bin/true
SchedulerParameters=sched_interval=1
ReturnToService=2
StateSaveLocation=$scratch/state
SlurmdSpoolDir=$scratch/spool
SlurmctldPidFile=$scratch/run/slurmctld.pid
SlurmdPidFile=$scratch/run/slurmd.pid
SlurmctldLogFile=$scratch/log/slurmctld.log
SlurmdLogFile=$scratch/log/slurmd.log
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
JobAcctGatherType=jobacct_gather/none
NodeName=${host} NodeAddr=127.0.0.1 CPUs=${cpus} RealMemory=${memory} State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
  cat > /etc/slurm/slurmdbd.conf <<EOF
AuthType=auth/munge
DbdHost=${host}
DbdAddr=127.0.0.1
DbdPort=6819
SlurmUser=root
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StorageUser=slurm
StoragePass=msgan
StorageLoc=slurm_acct_db
PidFile=$scratch/run/slurmdbd.pid
LogFile=$scratch/log/slurmdbd.log
EOF
  chmod 600 /etc/slurm/slurmdbd.conf
}

wait_for() {   # wait_for SECONDS COMMAND...: retry until the command succeeds
  local limit="$1"; shift
  for _ in $(seq "$((limit * 10))"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "slurm_cluster: timed out waiting for: $*" >&2; return 1
}

start() {
  install_packages
  write_config
  mkdir -p /run/munge /run/mysqld
  chown munge:munge /run/munge; chown mysql:mysql /run/mysqld
  pgrep -x munged >/dev/null || runuser -u munge -- /usr/sbin/munged
  if ! pgrep -x mariadbd >/dev/null; then
    [ -d /var/lib/mysql/mysql ] || mariadb-install-db --user=mysql >/dev/null
    mariadbd --user=mysql --bind-address=127.0.0.1 --pid-file=/run/mysqld/mysqld.pid >"$scratch/log/mariadb.log" 2>&1 &
    wait_for 30 mariadb -e "select 1"
  fi
  # A fresh controller state ($scratch cleared, e.g. a new /tmp) numbers jobs from 1 again, and submitit
  # asks sacct for a job by its id: a record of an earlier cluster's job with that id, kept in a database
  # that outlived $scratch, made a running job look COMPLETED (a requeue test failed so). A fresh state
  # therefore gets a fresh accounting database.
  if [ ! -e "$scratch/state/job_state" ] && ! pgrep -x slurmdbd >/dev/null; then
    mariadb -e "DROP DATABASE IF EXISTS slurm_acct_db;"
  fi
  mariadb -e "CREATE DATABASE IF NOT EXISTS slurm_acct_db; CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'msgan';
              GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost'; FLUSH PRIVILEGES;"
  pgrep -x slurmdbd >/dev/null || /usr/sbin/slurmdbd
  wait_for 30 sacctmgr -n list cluster
  sacctmgr -i add cluster msgan >/dev/null 2>&1 || true
  pgrep -x slurmctld >/dev/null || /usr/sbin/slurmctld
  pgrep -x slurmd >/dev/null || /usr/sbin/slurmd
  wait_for 30 bash -c "sinfo -h -o %T | grep -qE 'idle|mixed|alloc'"
  sinfo
}

stop() {
  for pid_file in "$scratch/run/slurmd.pid" "$scratch/run/slurmctld.pid" "$scratch/run/slurmdbd.pid" \
                  /run/mysqld/mysqld.pid /run/munge/munged.pid; do
    [ -f "$pid_file" ] && kill "$(cat "$pid_file")" 2>/dev/null || true
  done
  echo "slurm_cluster: stopped"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
