#!/bin/bash
# Queue bids-ms on a SLURM cluster: a participant array job (one task per chunk of participants),
# then the group level once every task succeeded (--dependency=afterok). Usage:
#
#   export BIDS_DIR=/data/study OUTPUT_DIR=/data/study/derivatives/bids-ms \
#          FS_LICENSE_FILE=$HOME/freesurfer/license.txt
#   export BIDS_MS_SIF=/containers/bids-ms-0.1.0.sif        # run in the container, or
#   export BIDS_MS_CMD="bids-ms"                            # any command: a native install,
#   #      BIDS_MS_CMD="apptainer run --cleanenv -B /data,/scratch /containers/bids-ms.sif"
#   singularity/submit_slurm.sh [participants.txt]
#
# Without a participants file, the labels come from $BIDS_DIR/participants.tsv (first column), else
# from the sub-* folders. PARTICIPANTS_PER_TASK (default 1) puts that many participants in each array
# task (at biobank scale: tables route, 40,000 participants, e.g. 500 a task); MAX_PARALLEL (default
# 50) caps the tasks that run at once; GROUP_DEPENDENCY=afterany runs the group level even when some
# participants failed. PARTICIPANT_SBATCH_ARGS and GROUP_SBATCH_ARGS add sbatch options (they win
# over the #SBATCH lines), e.g. PARTICIPANT_SBATCH_ARGS="-p short -c 2 --mem=4G -t 1:00:00".
# See docs/hpc.md.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [ -z "${BIDS_MS_CMD:-}" ]; then
    : "${BIDS_MS_SIF:?set BIDS_MS_SIF to the bids-ms .sif image, or BIDS_MS_CMD to the command to run}"
fi
: "${BIDS_DIR:?set BIDS_DIR to the BIDS dataset}"
: "${OUTPUT_DIR:?set OUTPUT_DIR to the derivatives folder}"
export WORK_ROOT="${WORK_ROOT:-${SCRATCH:-${TMPDIR:-/tmp}}/bids-ms-work}"
mkdir -p "$WORK_ROOT"

if [ $# -ge 1 ]; then
    list="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
else
    list="${WORK_ROOT}/participants.txt"
    if [ -f "${BIDS_DIR}/participants.tsv" ]; then
        awk -F'\t' 'NR > 1 && $1 != "" { print $1 }' "${BIDS_DIR}/participants.tsv" > "$list"
    else
        find "$BIDS_DIR" -mindepth 1 -maxdepth 1 -type d -name 'sub-*' -printf '%f\n' | sort > "$list"
    fi
fi
n="$(grep -c . "$list" || true)"
if [ "$n" -eq 0 ]; then
    echo "bids-ms: no participants in ${list}" >&2
    exit 64
fi

per_task="${PARTICIPANTS_PER_TASK:-1}"
if ! [[ "$per_task" =~ ^[1-9][0-9]*$ ]]; then
    echo "bids-ms: PARTICIPANTS_PER_TASK must be a whole number >= 1, not '${per_task}'" >&2
    exit 64
fi
tasks=$(( (n + per_task - 1) / per_task ))
# SLURM refuses array indices >= MaxArraySize (1001 unless the site raised it).
max_array="$(scontrol show config 2> /dev/null | awk '$1 == "MaxArraySize" { print $3 }' || true)"
if [[ "$max_array" =~ ^[0-9]+$ ]] && [ "$tasks" -ge "$max_array" ]; then
    echo "bids-ms: ${n} participants at ${per_task} a task make ${tasks} array tasks, but this" \
        "cluster's MaxArraySize is ${max_array}; set PARTICIPANTS_PER_TASK=$(( (n + max_array - 2) / (max_array - 1) ))" \
        "or more" >&2
    exit 64
fi

read -r -a participant_sbatch <<< "${PARTICIPANT_SBATCH_ARGS:-}"
read -r -a group_sbatch <<< "${GROUP_SBATCH_ARGS:-}"

participant_job="$(PARTICIPANTS_FILE="$list" PARTICIPANTS_PER_TASK="$per_task" \
    sbatch --parsable --export=ALL \
    --array="1-${tasks}%${MAX_PARALLEL:-50}" \
    ${participant_sbatch[@]+"${participant_sbatch[@]}"} \
    "${here}/slurm_participant.sbatch")"
participant_job="${participant_job%%;*}"
# --kill-on-invalid-dep: with afterok, a failed participant task cancels the group job instead of
# leaving it pending forever.
group_job="$(sbatch --parsable --export=ALL \
    --dependency="${GROUP_DEPENDENCY:-afterok}:${participant_job}" --kill-on-invalid-dep=yes \
    ${group_sbatch[@]+"${group_sbatch[@]}"} \
    "${here}/slurm_group.sbatch")"
group_job="${group_job%%;*}"

echo "participant level: array job ${participant_job} (${n} participants from ${list}, ${per_task} a task, ${tasks} tasks)"
echo "group level: job ${group_job}, starts after ${GROUP_DEPENDENCY:-afterok}:${participant_job}"
