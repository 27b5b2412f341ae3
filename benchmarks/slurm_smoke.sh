#!/usr/bin/env bash
# The smoke preset through SLURM on this one machine, against a local run of the
# same preset.
#
#   benchmarks/slurm_smoke.sh [--keep]
#
# 1. installs slurm-wlm and munge with apt-get if they are missing (needs root);
# 2. starts munged (unless one runs), slurmctld and slurmd by hand, as a single-node
#    cluster: slurm.conf and gres.conf (one fake GPU) go to /etc/slurm, where the
#    srun inside each job looks (the plugin drops SLURM_CONF from a job step's
#    environment); files already there are put back at the end, and the state, spool,
#    PID and log files live in a temporary folder;
# 3. copies the workflow twice (the files tests/conftest.py's copy_workflow copies)
#    and runs, one after the other, `snakemake --cores 2 --configfile configs/smoke.yaml`
#    in one copy and `snakemake --executor slurm --profile profiles/slurm ...` in the
#    other (status by squeue: this cluster has no accounting);
# 4. checks table.csv (a row per grid cell), that stats/summary.csv is byte-identical
#    to the local run's, and which rules went through the queue (the analysis rules
#    must not: they are localrules);
# 5. stops the daemons it started (by PID) and removes the temporary folder (--keep
#    keeps it, with the logs).
#
# It prints the two wall times. Exit 0 with a line "skipped: <why>" where SLURM cannot
# be installed or started (no root, no apt-get, a SLURM controller already running,
# daemons that do not come up); exit 1 when a run or a check fails.
#
# SLURM_SMOKE_ARGS adds arguments to the SLURM run (a shorter status poll, say).
# Python: $SLURM_VENV (default /tmp/prunability-slurm-venv) with snakemake and
# snakemake-executor-plugin-slurm 2.8.0; created with pip if missing (torch pinned to
# the local CPU wheel). Keep the plugin out of the test venv: with the plugin installed
# and slurmctld down, every snakemake command there is ~9 s slower.
set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${SLURM_VENV:-/tmp/prunability-slurm-venv}
RUN_TIMEOUT=${SLURM_SMOKE_TIMEOUT:-1800}  # seconds for each snakemake run
# more arguments for the SLURM run, e.g. "--slurm-init-seconds-before-status-checks 10"
read -r -a EXTRA_ARGS <<<"${SLURM_SMOKE_ARGS:-}"
KEEP=0
[[ ${1:-} == --keep ]] && KEEP=1

skip() { echo "skipped: $*"; exit 0; }
fail() { echo "FAILED: $*"; exit 1; }
say() { echo "[slurm_smoke $(date +%T)] $*"; }

[[ $(id -u) == 0 ]] || skip "needs root to install SLURM and run its daemons"
# someone else's SLURM: not ours to start, stop or reconfigure
pgrep -x slurmctld >/dev/null && skip "a slurmctld is already running on this machine"
pgrep -x slurmd >/dev/null && skip "a slurmd is already running on this machine"

# --- 1. packages ---------------------------------------------------------------
if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
    command -v apt-get >/dev/null || skip "slurm-wlm is not installed and there is no apt-get"
    say "installing slurm-wlm and munge with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    if ! timeout 600 apt-get install -y -q slurm-wlm munge >/tmp/prunability-slurm-apt.log 2>&1; then
        timeout 300 apt-get update -q >>/tmp/prunability-slurm-apt.log 2>&1
        timeout 600 apt-get install -y -q slurm-wlm munge >>/tmp/prunability-slurm-apt.log 2>&1 \
            || skip "apt-get install slurm-wlm munge failed (/tmp/prunability-slurm-apt.log)"
    fi
fi
for tool in slurmctld slurmd sbatch squeue sinfo scancel munged; do
    command -v $tool >/dev/null || skip "$tool not found after installing slurm-wlm and munge"
done

# --- Python with the SLURM plugin -----------------------------------------------
PY=$VENV/bin/python
if ! "$PY" -c "import snakemake_executor_plugin_slurm, torch, prunability" 2>/dev/null; then
    say "creating $VENV (snakemake, snakemake-executor-plugin-slurm 2.8.0, torch 2.13.0)"
    # the package is installed from a copy, so that no build files land in the checkout
    # (the runs import it from their own copy's src/ anyway)
    BUILD=$(mktemp -d /tmp/prunability-slurm-build.XXXXXX)
    cp -r "$REPO/pyproject.toml" "$REPO/README.md" "$REPO/LICENSE" "$REPO/src" "$BUILD/"
    { python3 -m venv "$VENV" \
        && "$VENV/bin/pip" install -q torch==2.13.0 \
        && "$VENV/bin/pip" install -q "$BUILD" snakemake-executor-plugin-slurm==2.8.0; } \
        >/tmp/prunability-slurm-pip.log 2>&1
    rc=$?
    rm -rf "$BUILD"
    ((rc == 0)) || skip "could not install the SLURM executor plugin into $VENV (/tmp/prunability-slurm-pip.log)"
fi

# --- 2. a single-node cluster ----------------------------------------------------
WORK=$(mktemp -d /tmp/prunability-slurm.XXXXXX)
mkdir -p "$WORK/etc-before" "$WORK/state" "$WORK/spool" "$WORK/log"
SLURM_CONF=/etc/slurm/slurm.conf
STARTED_MUNGE=""
WROTE_CONF=""

cleanup() {
    local rc=$?
    if [[ -f $WORK/slurmctld.pid ]]; then
        scancel --user=root >/dev/null 2>&1
        sleep 1
    fi
    for daemon in slurmd slurmctld; do
        if [[ -f $WORK/$daemon.pid ]]; then
            local pid
            pid=$(cat "$WORK/$daemon.pid")
            kill "$pid" 2>/dev/null
            for _ in $(seq 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
            kill -9 "$pid" 2>/dev/null
        fi
    done
    if [[ -n $STARTED_MUNGE ]]; then
        kill "$STARTED_MUNGE" 2>/dev/null
    fi
    # put /etc/slurm back as it was: a slurm.conf left behind with no slurmctld makes
    # every snakemake command ~9 s slower wherever the plugin is installed
    if [[ -n $WROTE_CONF ]]; then
        for name in slurm.conf gres.conf; do
            rm -f "/etc/slurm/$name"
            [[ -f $WORK/etc-before/$name ]] && cp -p "$WORK/etc-before/$name" "/etc/slurm/$name"
        done
    fi
    if ((KEEP)); then
        echo "kept $WORK (logs: $WORK/log, $WORK/local.log, $WORK/slurm.log)"
    else
        rm -rf "$WORK"
    fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

HOST=$(hostname -s)
NODE=$(slurmd -C 2>/dev/null | grep '^NodeName=' | head -1)
[[ -n $NODE ]] || skip "slurmd -C printed no node line"
NODE=$(sed -E "s/^NodeName=[^ ]+/NodeName=$HOST/; s/ UpTime=.*//" <<<"$NODE")
mkdir -p /etc/slurm
for name in slurm.conf gres.conf; do
    [[ -f /etc/slurm/$name ]] && cp -p "/etc/slurm/$name" "$WORK/etc-before/$name"
done
WROTE_CONF=1
cat >"$SLURM_CONF" <<EOF
ClusterName=prunability-smoke
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$WORK/state
SlurmdSpoolDir=$WORK/spool
SlurmctldPidFile=$WORK/slurmctld.pid
SlurmdPidFile=$WORK/slurmd.pid
SlurmctldLogFile=$WORK/log/slurmctld.log
SlurmdLogFile=$WORK/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
GresTypes=gpu
MpiDefault=none
ReturnToService=2
$NODE Gres=gpu:1 State=UNKNOWN
PartitionName=main Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF
echo "NodeName=$HOST Name=gpu File=/dev/null" >/etc/slurm/gres.conf

if pgrep -x munged >/dev/null; then
    say "using the munged already running"
else
    mkdir -p /run/munge /var/log/munge /var/lib/munge
    chown munge:munge /run/munge /var/log/munge /var/lib/munge
    if [[ ! -s /etc/munge/munge.key ]]; then
        (command -v mungekey >/dev/null && mungekey --create --force >/dev/null 2>&1) \
            || dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
        chown munge:munge /etc/munge/munge.key
        chmod 400 /etc/munge/munge.key
    fi
    runuser -u munge -- munged || skip "munged did not start"
    for _ in $(seq 20); do [[ -s /run/munge/munged.pid ]] && break; sleep 0.25; done
    STARTED_MUNGE=$(cat /run/munge/munged.pid 2>/dev/null)
fi
slurmctld -i >/dev/null 2>&1 || skip "slurmctld did not start ($(tail -3 "$WORK/log/slurmctld.log" 2>/dev/null))"
slurmd >/dev/null 2>&1 || skip "slurmd did not start ($(tail -3 "$WORK/log/slurmd.log" 2>/dev/null))"
state=""
for _ in $(seq 60); do
    state=$(sinfo -h -n "$HOST" -o %t 2>/dev/null)
    [[ $state == idle ]] && break
    sleep 0.5
done
[[ $state == idle ]] || skip "the node did not become idle (state '$state'; $(tail -3 "$WORK/log/slurmd.log" 2>/dev/null))"
say "single-node SLURM up: $NODE"

# --- 3. the two runs -------------------------------------------------------------
copy_workflow() {
    mkdir -p "$1"
    for name in Snakefile config.yaml configs workflow envs profiles src; do
        cp -r "$REPO/$name" "$1/"
    done
    find "$1" -name __pycache__ -type d -prune -exec rm -rf {} +
}

run_snakemake() {  # folder, log file, snakemake arguments...
    local dir=$1 log=$2
    shift 2
    local start end rc
    start=$(date +%s.%N)
    (cd "$dir" && PYTHONPATH=$dir/src timeout -s KILL "$RUN_TIMEOUT" "$PY" -m snakemake "$@") >"$log" 2>&1
    rc=$?
    end=$(date +%s.%N)
    ELAPSED=$(python3 -c "print(f'{$end - $start:.0f}')")
    return $rc
}

copy_workflow "$WORK/local"
copy_workflow "$WORK/slurm"

say "local run: snakemake --cores 2 --configfile configs/smoke.yaml"
run_snakemake "$WORK/local" "$WORK/local.log" --cores 2 --configfile configs/smoke.yaml \
    || { rc=$?; tail -30 "$WORK/local.log"; KEEP=1; fail "the local run failed (rc $rc)"; }
LOCAL_S=$ELAPSED
say "local run: ${LOCAL_S} s"

say "SLURM run: snakemake --executor slurm --profile profiles/slurm --configfile configs/smoke.yaml"
run_snakemake "$WORK/slurm" "$WORK/slurm.log" --executor slurm --profile profiles/slurm \
    --configfile configs/smoke.yaml --slurm-status-command squeue --slurm-no-account \
    --slurm-keep-successful-logs "${EXTRA_ARGS[@]}" \
    || { rc=$?; tail -40 "$WORK/slurm.log"; KEEP=1; fail "the SLURM run failed (rc $rc)"; }
SLURM_S=$ELAPSED
say "SLURM run: ${SLURM_S} s"

# --- 4. checks -------------------------------------------------------------------
STUDY=$(cd "$WORK/slurm" && "$PY" -c "import yaml; print(yaml.safe_load(open('configs/smoke.yaml'))['study'])")
check=$("$PY" - "$WORK/slurm" "$STUDY" <<'EOF'
import csv, math, sys, yaml
root, study = sys.argv[1], sys.argv[2]
grid = yaml.safe_load(open(f"{root}/configs/smoke.yaml"))["grid"]
cells = math.prod(len(v) for v in grid.values())
rows = sum(1 for _ in csv.DictReader(open(f"{root}/results/{study}/table.csv")))
print("ok" if rows == cells else f"table.csv has {rows} rows, the grid {cells} cells")
EOF
)
[[ $check == ok ]] || { KEEP=1; fail "$check"; }
ROWS=$(($(wc -l <"$WORK/slurm/results/$STUDY/table.csv") - 1))
cmp -s "$WORK/local/results/$STUDY/stats/summary.csv" "$WORK/slurm/results/$STUDY/stats/summary.csv" \
    || { KEEP=1; fail "stats/summary.csv differs between the local and the SLURM run"; }

# what went through the queue: one log folder per rule or group under slurm_logs
QUEUED=$(cd "$WORK/slurm/.snakemake/slurm_logs" 2>/dev/null && ls | sort | tr '\n' ' ')
SUBMITTED=$(grep -c "has been submitted with SLURM jobid" "$WORK/slurm.log")
for rule in collect_table statistics conditional_mutual_information prediction_mutual_information claims figures double_descent; do
    [[ " $QUEUED " == *" rule_$rule "* ]] && { KEEP=1; fail "rule $rule went through the queue (it is a localrule)"; }
done
[[ " $QUEUED " == *" group_train_and_quick_measures"* ]] \
    || { KEEP=1; fail "no group job train_and_quick_measures was submitted (queued: $QUEUED)"; }
LOCAL_JOBS=$(grep -m1 -E '^total +[0-9]+' "$WORK/local.log" | awk '{print $2}')

say "table.csv: $ROWS rows; stats/summary.csv identical to the local run's"
say "cluster jobs submitted: $SUBMITTED (folders: $QUEUED); jobs in the local run: $LOCAL_JOBS"
echo "passed: smoke preset, local ${LOCAL_S} s, SLURM ${SLURM_S} s ($SUBMITTED cluster jobs)"
