#!/usr/bin/env bash
# Starts a real one-node Slurm cluster on this machine for the Slurm test (tests/cells.rs):
# munged, slurmctld and slurmd started directly (no systemd), configuration, state and logs in
# one directory. Prints `export SLURM_CONF=...` for the shell that submits; stop it with
# tests/slurm/down.sh DIR. Installs Debian's slurm-wlm and munge when they are missing.
#
#   eval "$(tests/slurm/up.sh /tmp/repsim-slurm)"
set -euo pipefail
dir="${1:-/tmp/repsim-slurm}"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"

if ! command -v slurmctld >/dev/null 2>&1 || ! command -v munged >/dev/null 2>&1; then
  echo "installing slurm-wlm and munge" >&2
  $SUDO apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq slurm-wlm munge >&2
fi

mkdir -p "$dir/state" "$dir/spool"
node="$(hostname -s)"
cpus="$(nproc)"
memory_mb=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 / 2 ))
cat > "$dir/slurm.conf" <<CONF
ClusterName=repsim
SlurmctldHost=${node}(127.0.0.1)
SlurmUser=$(id -un)
SlurmctldPort=6817
SlurmdPort=6818
AuthType=auth/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
ReturnToService=2
MpiDefault=none
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
MinJobAge=3600
NodeName=${node} NodeAddr=127.0.0.1 CPUs=${cpus} RealMemory=${memory_mb} State=UNKNOWN
PartitionName=repsim Nodes=${node} Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF="$dir/slurm.conf"

# munged: the key comes with Debian's package; its socket directory may not exist yet.
if ! pgrep -x munged >/dev/null; then
  $SUDO mkdir -p /run/munge
  $SUDO chown munge:munge /run/munge
  $SUDO runuser -u munge -- /usr/sbin/munged
fi
slurmctld -f "$SLURM_CONF"
slurmd -f "$SLURM_CONF"

for _ in $(seq 1 60); do
  if sinfo -h -o '%T' 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; then
    echo "export SLURM_CONF=$SLURM_CONF"
    exit 0
  fi
  sleep 1
done
echo "the Slurm cluster in $dir did not come up in 60 s; logs: $dir/slurmctld.log, $dir/slurmd.log" >&2
exit 1
