#!/usr/bin/env bash
# Stops the cluster of tests/slurm/up.sh DIR: slurmd and slurmctld by their pid files (which
# are then deleted, or Debian's scripts later hang on scancel), and munged.
set -uo pipefail
dir="${1:-/tmp/repsim-slurm}"
for daemon in slurmd slurmctld; do
  pid_file="$dir/$daemon.pid"
  if [ -f "$pid_file" ]; then
    pid="$(cat "$pid_file")"
    kill "$pid" 2>/dev/null
    for _ in $(seq 1 20); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.5
    done
    rm -f "$pid_file"
  fi
done
if [ -f /run/munge/munged.pid ]; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO kill "$(cat /run/munge/munged.pid)" 2>/dev/null
  $SUDO rm -f /run/munge/munged.pid
fi
exit 0
