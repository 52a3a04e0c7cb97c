#!/bin/bash
# Queue bids-ms on a SLURM cluster: one array task per participant, then the group level once all
# of them succeeded (--dependency=afterok). Usage:
#
#   export BIDS_MS_SIF=/containers/bids-ms-0.1.0.sif BIDS_DIR=/data/study \
#          OUTPUT_DIR=/data/study/derivatives/bids-ms FS_LICENSE_FILE=$HOME/freesurfer/license.txt
#   singularity/submit_slurm.sh [participants.txt]
#
# Without a participants file, the labels come from $BIDS_DIR/participants.tsv (first column), else
# from the sub-* folders. MAX_PARALLEL (default 50) caps the tasks that run at once;
# GROUP_DEPENDENCY=afterany runs the group level even when some participants failed.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
: "${BIDS_MS_SIF:?set BIDS_MS_SIF to the bids-ms .sif image}"
: "${BIDS_DIR:?set BIDS_DIR to the BIDS dataset}"
: "${OUTPUT_DIR:?set OUTPUT_DIR to the derivatives folder}"
: "${FS_LICENSE_FILE:?set FS_LICENSE_FILE to your FreeSurfer license.txt}"
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

participant_job="$(PARTICIPANTS_FILE="$list" sbatch --parsable --export=ALL \
    --array="1-${n}%${MAX_PARALLEL:-50}" "${here}/slurm_participant.sbatch")"
participant_job="${participant_job%%;*}"
group_job="$(sbatch --parsable --export=ALL \
    --dependency="${GROUP_DEPENDENCY:-afterok}:${participant_job}" "${here}/slurm_group.sbatch")"
group_job="${group_job%%;*}"

echo "participant level: array job ${participant_job} (${n} participants from ${list})"
echo "group level: job ${group_job}, starts after ${GROUP_DEPENDENCY:-afterok}:${participant_job}"
