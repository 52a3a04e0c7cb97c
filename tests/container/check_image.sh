#!/usr/bin/env bash
# Build the bids-ms container image from the Dockerfile and check it the way users run it.
#
#   tests/container/check_image.sh               make the base, build, check, save the archive
#   tests/container/check_image.sh --self-test   ...then show that the check fails on three
#                                                broken images (entry point, missing file,
#                                                write outside the mounts)
#   tests/container/check_image.sh --check-only IMAGE   only the checks, on IMAGE
#
# Every run uses podman with `--read-only --network=none --user 1000:1000`, the example mounted
# read-only, and /tmp mounted from a fresh host folder, so that the only writable places are the
# output, work and scratch folders given to it; the script then shows what was written where.
#
# Environment (all optional):
#   BIDS_MS_IMAGE            tag of the image built and checked (localhost/bids-ms:check)
#   BIDS_MS_BASE_SOURCE      mmdebstrap (default: make Debian bookworm from Debian's packages and
#                            import it under the name the Dockerfile's FROM uses) or pull
#   BIDS_MS_FRESH_BASE=1     make the base again even when podman has it (a cold build)
#   BIDS_MS_NO_CACHE=1       build without podman's layer cache (a cold build)
#   BIDS_MS_BUILD_ARGS       more arguments for `podman build` (e.g. --build-arg IMAGE_TAG=...)
#   BIDS_MS_VCS_REF          the revision for the OCI label (default: git rev-parse HEAD)
#   BIDS_MS_IMAGE_ARCHIVE    where `podman save --format docker-archive` writes the image, for
#                            singularity/bids-ms.def (default: ${TMPDIR:-/tmp}/bids-ms-image.docker.tar;
#                            "none" to skip)
#   BIDS_MS_PODMAN_RUNTIME   OCI runtime (runc: crun fails on hybrid cgroups)
#   BIDS_MS_MAX_IMAGE_GB     size limit, uncompressed (5)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
EXAMPLE="$ROOT/examples/abide_nyu_usm"
IMAGE="${BIDS_MS_IMAGE:-localhost/bids-ms:check}"
RUNTIME="${BIDS_MS_PODMAN_RUNTIME:-runc}"
MAX_GB="${BIDS_MS_MAX_IMAGE_GB:-5}"
ARCHIVE="${BIDS_MS_IMAGE_ARCHIVE:-${TMPDIR:-/tmp}/bids-ms-image.docker.tar}"
VERSION="$(sed -n 's/^__version__ = "\(.*\)"/\1/p' "$ROOT/bids_ms/__init__.py")"
# The public name of the base, as the Dockerfile's FROM has it.
BASE_IMAGE="$(sed -n 's/^ARG BASE_IMAGE=\(.*\)$/\1/p' "$ROOT/Dockerfile" | head -n 1)"
DK_GCS=average/lh.DKaparc.atlas.acfb40.noaparc.i12.2016-08-02.gcs

say() { printf '[check_image] %s\n' "$*"; }
fail() {
  printf '[check_image] FAIL: %s\n' "$*" >&2
  exit 1
}

SCRATCH="$(mktemp -d "${TMPDIR:-/tmp}/bids-ms-check.XXXXXX")"
chmod 755 "$SCRATCH"
cleanup() { rm -rf "$SCRATCH"; }
trap cleanup EXIT

# podman on this kind of kernel: runc, and no default rlimits (setting them is refused).
printf '[containers]\ndefault_ulimits = []\n' > "$SCRATCH/containers.conf"
export CONTAINERS_CONF="$SCRATCH/containers.conf"
pm() { podman --runtime "$RUNTIME" "$@"; }

podman_works() {
  command -v podman >/dev/null 2>&1 ||
    fail "podman is not installed: apt-get install podman runc uidmap mmdebstrap"
  local err
  err="$(pm info 2>&1)" || fail "podman cannot run on this machine ($RUNTIME): ${err##*$'\n'}"
}
preflight() {
  local err
  if ! err="$(pm run --rm --network=none --pull=never --entrypoint /bin/true "$1" 2>&1)"; then
    fail "podman cannot run a container on this machine ($RUNTIME): ${err##*$'\n'}"
  fi
}

# --------------------------------------------------------------------------------------------
# The base: Debian bookworm made from Debian's own packages, under the Dockerfile's FROM name.
# --------------------------------------------------------------------------------------------
make_base() {
  [ -n "$BASE_IMAGE" ] || fail "no 'ARG BASE_IMAGE=' in the Dockerfile"
  if [ "${BIDS_MS_FRESH_BASE:-0}" != 1 ] && podman image exists "$BASE_IMAGE"; then
    say "base: $BASE_IMAGE already in podman's store (BIDS_MS_FRESH_BASE=1 makes it again)"
    return
  fi
  case "${BIDS_MS_BASE_SOURCE:-mmdebstrap}" in
    pull) pm pull "$BASE_IMAGE" ;;
    mmdebstrap)
      command -v mmdebstrap >/dev/null 2>&1 || fail "mmdebstrap is not installed: apt-get install mmdebstrap"
      local t0=$SECONDS
      # What debian:*-slim leaves out (documentation, manual pages, locales) stays out here too.
      nice -n 10 mmdebstrap --quiet --variant=minbase \
        --dpkgopt='path-exclude=/usr/share/man/*' \
        --dpkgopt='path-exclude=/usr/share/doc/*' \
        --dpkgopt='path-include=/usr/share/doc/*/copyright' \
        --dpkgopt='path-exclude=/usr/share/locale/*' \
        --dpkgopt='path-exclude=/usr/share/info/*' \
        bookworm "$SCRATCH/rootfs.tar" ||
        fail "mmdebstrap could not make Debian bookworm"
      pm import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'CMD ["bash"]' \
        "$SCRATCH/rootfs.tar" "$BASE_IMAGE" >/dev/null
      rm -f "$SCRATCH/rootfs.tar"
      say "base: $BASE_IMAGE made with mmdebstrap in $((SECONDS - t0)) s"
      ;;
    *) fail "BIDS_MS_BASE_SOURCE must be mmdebstrap or pull" ;;
  esac
}

# --------------------------------------------------------------------------------------------
# The build.
# --------------------------------------------------------------------------------------------
build() {
  # --format docker: the OCI format drops SHELL (bash with pipefail in every RUN).
  local args=(--pull=never --network host --layers --format docker -t "$IMAGE"
    --build-arg "VERSION=$VERSION"
    --build-arg "VCS_REF=${BIDS_MS_VCS_REF:-$(git -C "$ROOT" rev-parse HEAD 2>/dev/null || echo unknown)}"
    --build-arg "BUILD_DATE=$(date -u +%Y-%m-%dT%H:%M:%SZ)")
  # The machine's CA bundle (a TLS-inspecting proxy's CA may be in it), read-only, for pip only;
  # a build secret never reaches a layer.
  local bundle=/etc/ssl/certs/ca-certificates.crt
  [ -s "$bundle" ] && args+=(--secret "id=ca-bundle,src=$bundle")
  [ "${BIDS_MS_NO_CACHE:-0}" = 1 ] && args+=(--no-cache)
  # shellcheck disable=SC2206  # extra arguments are words on purpose
  [ -n "${BIDS_MS_BUILD_ARGS:-}" ] && args+=(${BIDS_MS_BUILD_ARGS})
  say "build: podman build ${args[*]} $ROOT"
  local t0=$SECONDS
  nice -n 10 podman --runtime "$RUNTIME" build "${args[@]}" "$ROOT" > "$SCRATCH/build.log" 2>&1 || {
    tail -n 40 "$SCRATCH/build.log" >&2
    fail "the image did not build (last lines above)"
  }
  BUILD_SECONDS=$((SECONDS - t0))
  say "build: $IMAGE in ${BUILD_SECONDS} s on $(nproc) cores ($(grep -c '^--> Using cache' "$SCRATCH/build.log" || true) cached steps)"
}

report_size() {
  local bytes
  bytes="$(podman image inspect --format '{{.Size}}' "$1")"
  say "size: $1 is $(awk -v b="$bytes" 'BEGIN { printf "%.2f GB (%.0f MiB)", b / 1e9, b / 1048576 }') uncompressed"
  awk -v b="$bytes" -v m="$MAX_GB" 'BEGIN { exit !(b < m * 1e9) }' ||
    fail "the image is larger than ${MAX_GB} GB"
}

# --------------------------------------------------------------------------------------------
# The checks. Each container run gets a fresh /tmp from the host (HOME and TMPDIR), the root file
# system read-only and no network; afterwards /tmp may hold only caches.
# --------------------------------------------------------------------------------------------
RUNS=0
# run NAME [podman run options ...] -- [image arguments ...]: stdout/stderr/exit code in $SCRATCH/NAME.*
run() {
  local name="$1"
  shift
  local opts=()
  while [ "$#" -gt 0 ] && [ "$1" != -- ]; do
    opts+=("$1")
    shift
  done
  shift
  local tmp="$SCRATCH/tmp-$name"
  mkdir -p "$tmp" && chmod 1777 "$tmp"
  RUNS=$((RUNS + 1))
  set +e
  pm run --rm --read-only --read-only-tmpfs=false --network=none --user 1000:1000 --pull=never \
    -v "$tmp:/tmp" "${opts[@]}" "$CHECK_IMAGE" "$@" \
    > "$SCRATCH/$name.out" 2> "$SCRATCH/$name.err"
  echo $? > "$SCRATCH/$name.rc"
  set -e
  # Nothing but caches (matplotlib's font list, fontconfig) may be left in the scratch /tmp.
  local stray
  stray="$(cd "$tmp" && find . -mindepth 1 \
    ! -path ./.cache ! -path './.cache/*' \
    ! -path ./.config ! -path ./.config/matplotlib ! -path './.config/matplotlib/*' | sort)"
  [ -z "$stray" ] || fail "$name wrote outside the output and work directories, in /tmp: $(echo "$stray" | head -n 5 | tr '\n' ' ')"
}
rc() { cat "$SCRATCH/$1.rc"; }
expect_rc() {
  local got
  got="$(rc "$1")"
  [ "$got" = "$2" ] || {
    tail -n 20 "$SCRATCH/$1.err" >&2
    fail "$1: exit code $got, expected $2"
  }
}
one_line_error() {
  # stderr of a failed run: whatever the log said, then one error line, "bids-ms: error: ...",
  # as the last line, and no traceback.
  local n
  grep -q Traceback "$SCRATCH/$1.err" && {
    tail -n 5 "$SCRATCH/$1.err" >&2
    fail "$1: a traceback instead of a one-line error"
  }
  n="$(grep -c '^bids-ms: error: ' "$SCRATCH/$1.err" || true)"
  if [ "$n" != 1 ] || ! grep . "$SCRATCH/$1.err" | tail -n 1 | grep -q '^bids-ms: error: '; then
    tail -n 5 "$SCRATCH/$1.err" >&2
    fail "$1: $n 'bids-ms: error:' lines on stderr, expected one, last"
  fi
}
error_line() { grep -m 1 '^bids-ms: error: ' "$SCRATCH/$1.err"; }
tree_digest() { (cd "$1" && find . -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum); }

check() {
  CHECK_IMAGE="$1"
  say "checking $CHECK_IMAGE"
  local out="$SCRATCH/out" work="$SCRATCH/work" before
  rm -rf "$out" "$work"
  mkdir -p "$out" "$work"
  chmod 777 "$out" "$work"

  # 1. The entry point answers --version.
  run version -- --version
  expect_rc version 0
  grep -qx "bids-ms $VERSION" "$SCRATCH/version.out" ||
    fail "--version printed '$(head -c 200 "$SCRATCH/version.out")', expected 'bids-ms $VERSION'"
  say "ok: --version: $(cat "$SCRATCH/version.out")"

  # 2. Image metadata: entry point, non-root user, labels.
  local meta
  meta="$(podman image inspect --format '{{json .Config.Entrypoint}} {{.Config.User}} {{index .Config.Labels "org.opencontainers.image.version"}} {{index .Config.Env}}' "$CHECK_IMAGE")"
  case "$meta" in
    '["bids-ms"] 1000:1000 '"$VERSION"' '*) ;;
    *) fail "image config: '${meta:0:120}' (expected entry point [\"bids-ms\"], user 1000:1000, version label $VERSION)" ;;
  esac
  case "$meta" in *BIDS_MS_CONTAINER=docker*) ;; *) fail "BIDS_MS_CONTAINER=docker is not set" ;; esac
  say "ok: entry point bids-ms, user 1000:1000, OCI version label $VERSION"

  # 3. The files recon-all needs are there, every FreeSurfer binary finds its libraries, and
  #    there is no licence, no compiler and no pip cache.
  # shellcheck disable=SC2016  # expanded inside the container
  run files --entrypoint /bin/bash -- -c '
    set -u; status=0
    for f in bin/recon-all bin/fspython bin/mri_convert bin/mris_anatomical_stats bin/mris_ca_label \
             '"$DK_GCS"' average/rh.DKaparc.atlas.acfb40.noaparc.i12.2016-08-02.gcs \
             average/RB_all_2020-01-02.gca subjects/fsaverage/surf/lh.sphere.reg \
             subjects/fsaverage/label/lh.aparc.annot mni/bin/nu_correct FreeSurferColorLUT.txt \
             etc/recon-config.yaml; do
      [ -e "$FREESURFER_HOME/$f" ] || { echo "missing: \$FREESURFER_HOME/$f"; status=1; }
    done
    for c in tcsh bc perl python3; do command -v "$c" >/dev/null || { echo "missing: $c"; status=1; }; done
    for f in "$FREESURFER_HOME"/bin/* "$FREESURFER_HOME"/python/bin/python3; do
      [ -f "$f" ] && head -c 4 "$f" | grep -q ELF || continue
      ldd "$f" 2>/dev/null | grep -q "not found" && { echo "missing library: $f: $(ldd "$f" | grep "not found" | head -n 1)"; status=1; }
    done
    for f in "$FREESURFER_HOME/license.txt" "$FREESURFER_HOME/.license"; do
      [ -e "$f" ] && { echo "a FreeSurfer licence is in the image: $f"; status=1; }
    done
    for c in gcc cc g++ make; do command -v "$c" >/dev/null && { echo "a compiler in the image: $c"; status=1; }; done
    for d in /root/.cache/pip /tmp/.cache/pip; do [ -e "$d" ] && { echo "a pip cache in the image: $d"; status=1; }; done
    exit $status'
  [ "$(rc files)" = 0 ] || fail "files: $(tr '\n' ';' < "$SCRATCH/files.out")"
  say "ok: FreeSurfer files and libraries present; no licence, compiler or pip cache"

  # Nothing of the build machine: its own CA certificates (the build secret) are nowhere in the
  # image, nor is the source checkout.
  local ca_lines=""
  for f in /usr/local/share/ca-certificates/*.crt; do
    [ -f "$f" ] && ca_lines+="$(sed -n 2p "$f")"$'\n'
  done
  # shellcheck disable=SC2016  # expanded inside the container
  run machine -e "HOST_CA_LINES=$ca_lines" --entrypoint /bin/bash -- -c '
    status=0
    while IFS= read -r line; do
      [ -n "$line" ] || continue
      hit="$(grep -rlF -- "$line" /etc /usr/share/ca-certificates /opt/venv/lib 2>/dev/null | head -n 1)"
      [ -z "$hit" ] || { echo "a certificate of the build machine is in the image: $hit"; status=1; }
    done <<< "$HOST_CA_LINES"
    for d in /src /dist; do [ -e "$d" ] && { echo "build leftover: $d"; status=1; }; done
    exit $status'
  [ "$(rc machine)" = 0 ] || fail "machine: $(tr '\n' ';' < "$SCRATCH/machine.out")"
  say "ok: no certificate of the build machine ($(printf '%s' "$ca_lines" | grep -c .) checked) and no build leftovers in the image"

  # 4. recon-all plans the whole stream (-dontrun) inside the image, without a licence.
  # shellcheck disable=SC2016  # expanded inside the container
  run dontrun -v "$work:/work" --entrypoint /bin/bash -- -c '
    set -e
    python3 -c "import nibabel as nb, numpy as np; nb.Nifti1Image(np.random.default_rng(0).random((12, 12, 12), dtype=np.float32), np.eye(4)).to_filename(\"/work/T1w.nii.gz\")"
    mkdir -p /work/fs
    ln -s "$FREESURFER_HOME/subjects/fsaverage" /work/fs/fsaverage  # as bids-ms does
    recon-all -all -s sub-01 -sd /work/fs -i /work/T1w.nii.gz -openmp 2 -dontrun'
  expect_rc dontrun 0
  local log="$work/fs/sub-01/scripts/recon-all.log"
  grep -q "finished without error" "$SCRATCH/dontrun.out" || fail "recon-all -dontrun did not finish"
  grep -q "lh.DKaparc.atlas.acfb40.noaparc.i12.2016-08-02.gcs ../label/lh.aparc.annot" "$log" ||
    fail "recon-all -dontrun did not plan the DK parcellation"
  grep -q -- "-f ../stats/rh.aparc.stats" "$log" || fail "recon-all -dontrun did not plan rh.aparc.stats"
  say "ok: recon-all -all -dontrun planned $(grep -c '^#@# ' "$log" || true) steps"

  # A BIDS dataset with one T1w image, for the runs that need recon-all (read-only from here on).
  local t1bids="$SCRATCH/t1bids"
  mkdir -p "$t1bids/sub-01/anat"
  printf '{"Name": "one T1w", "BIDSVersion": "1.9.0"}\n' > "$t1bids/dataset_description.json"
  cp "$work/T1w.nii.gz" "$t1bids/sub-01/anat/sub-01_T1w.nii.gz"
  chmod -R a+rX "$t1bids"
  before="$(tree_digest "$t1bids")"

  # 5. recon-all needed, no licence: exit 126, one line.
  run nolicence -v "$t1bids:/data:ro" -v "$work:/work" -v "$out:/out" -- \
    /data /out participant --skip-bids-validation -w /work
  expect_rc nolicence 126
  one_line_error nolicence
  say "ok: no licence -> 126: $(error_line nolicence)"
  # 6. --fs-license-file naming a path that is not mounted: one line that says to mount it.
  run unmounted -v "$t1bids:/data:ro" -v "$work:/work" -v "$out:/out" -- \
    /data /out participant --skip-bids-validation -w /work --fs-license-file /fs_license/license.txt
  expect_rc unmounted 126
  grep -qi "mount" "$SCRATCH/unmounted.err" || fail "unmounted licence: the message does not say to mount it"
  one_line_error unmounted
  say "ok: unmounted licence -> 126: $(error_line unmounted)"
  [ "$(tree_digest "$t1bids")" = "$before" ] || fail "the BIDS folder was changed"
  [ -z "$(find "$out" -path '*sub-01*' -print -quit)" ] || fail "a participant output was written without a licence"
  rm -rf "$out" && mkdir -p "$out" && chmod 777 "$out"

  # 7. The example, participant then group level, as the README runs it.
  before="$(tree_digest "$EXAMPLE")"
  local t0=$SECONDS
  run participant -v "$EXAMPLE:/example:ro" -v "$out:/out" -v "$work:/work" -- \
    /example/bids /out participant --fs-stats-tables /example/freesurfer_tables \
    --features volume area thickness --skip-bids-validation -w /work
  expect_rc participant 0
  say "ok: participant level on the example in $((SECONDS - t0)) s"
  t0=$SECONDS
  run group -v "$EXAMPLE:/example:ro" -v "$out:/out" -v "$work:/work" -- \
    /example/bids /out group --site-column site --skip-bids-validation -w /work
  expect_rc group 0
  say "ok: group level on the example in $((SECONDS - t0)) s"
  [ "$(tree_digest "$EXAMPLE")" = "$before" ] || fail "the example folder was changed"

  # 8. The contract files.
  local n_part n_reg f
  n_part="$(tail -n +2 "$EXAMPLE/bids/participants.tsv" | grep -c .)"
  n_reg="$(find "$out" -path '*/anat/*_atlas-DK_desc-MS_regional.tsv' | wc -l)"
  [ "$n_reg" = "$n_part" ] || fail "$n_reg regional MS files for $n_part participants"
  for f in dataset_description.json group/report.html group/desc-casecontrol_regional.tsv \
    group/desc-casecontrol_regional.json group/desc-casecontrol_global.json \
    group/desc-hubs_stats.json group/desc-lofo_correlations.tsv group/desc-economo_casecontrol.tsv \
    group/desc-pls_components.tsv group/desc-pls1_genes.tsv group/desc-pls1plus_genes.txt \
    group/desc-pls1minus_genes.txt group/desc-pls1_scores.tsv group/desc-pls1_stats.json \
    group/desc-enrichment_celltypes.tsv; do
    [ -s "$out/$f" ] || fail "missing output: $f"
  done
  # The contract's columns first, in its order (more may follow).
  case "$(head -n 1 "$out/group/desc-casecontrol_regional.tsv")" in
    "$(printf 'region\themisphere\tbeta\tt\tp\tp_fdr\tcohen_d\tn_case\tn_control')"*) ;;
    *) false ;;
  esac ||
    fail "desc-casecontrol_regional.tsv columns: $(head -n 1 "$out/group/desc-casecontrol_regional.tsv")"
  grep -q '"Type": *"docker"' "$out/dataset_description.json" ||
    fail "dataset_description.json does not record the container (GeneratedBy.Container.Type docker)"
  say "ok: $n_reg participants, group/report.html and the contract files"

  # 9. A read-only output folder: an error naming it, one line.
  local ro="$SCRATCH/ro_out"
  mkdir -p "$ro"
  run readonly_out -v "$EXAMPLE:/example:ro" -v "$ro:/out:ro" -v "$work:/work" -- \
    /example/bids /out participant --fs-stats-tables /example/freesurfer_tables \
    --skip-bids-validation -w /work
  [ "$(rc readonly_out)" != 0 ] || fail "a read-only output folder was accepted"
  one_line_error readonly_out
  error_line readonly_out | grep -q "/out" || fail "the error does not name the output folder /out"
  say "ok: read-only output -> exit $(rc readonly_out): $(error_line readonly_out)"
  [ -z "$(ls -A "$ro")" ] || fail "something was written into the read-only output folder"

  # 10. Where things were written: the output and work folders (owned by 1000:1000) and nothing
  #    else (the root file system is read-only, the scratch /tmp was checked after every run).
  local foreign
  foreign="$(find "$out" "$work" -mindepth 1 ! -uid 1000 | head -n 3)"
  [ -z "$foreign" ] || fail "files not written by uid 1000: $foreign"
  say "ok: $RUNS runs wrote only into /out ($(du -sh "$out" | cut -f1)) and /work ($(du -sh "$work" | cut -f1)); /tmp held only caches"
}

# --------------------------------------------------------------------------------------------
# Self-test: the check must fail on a broken image.
# --------------------------------------------------------------------------------------------
self_test() {
  local name dockerfile
  for name in broken-entrypoint missing-file write-outside; do
    dockerfile="$SCRATCH/Dockerfile.$name"
    printf 'FROM %s\n' "$IMAGE" > "$dockerfile"
    case "$name" in
      broken-entrypoint) printf 'ENTRYPOINT ["/opt/venv/bin/bids-ms-gone"]\n' >> "$dockerfile" ;;
      missing-file) printf 'USER 0\nRUN rm /opt/freesurfer/%s\nUSER 1000:1000\n' "$DK_GCS" >> "$dockerfile" ;;
      write-outside)
        printf '%s\n' 'ENTRYPOINT ["/bin/sh", "-c", "echo stray > /tmp/stray.txt && exec bids-ms \"$@\"", "bids-ms"]' >> "$dockerfile"
        ;;
    esac
    pm build --pull=never --network=none -q -t "localhost/bids-ms:selftest-$name" -f "$dockerfile" "$SCRATCH" > /dev/null
    if BIDS_MS_IMAGE_ARCHIVE=none bash "$0" --check-only "localhost/bids-ms:selftest-$name" > "$SCRATCH/selftest-$name.log" 2>&1; then
      cat "$SCRATCH/selftest-$name.log" >&2
      fail "self-test: the check passed on the $name image"
    fi
    say "self-test ok: $name -> $(grep 'FAIL' "$SCRATCH/selftest-$name.log" | head -n 1 | sed 's/^\[check_image\] //')"
    podman rmi -f "localhost/bids-ms:selftest-$name" > /dev/null
  done
}

case "${1:-}" in
  --check-only)
    [ -n "${2:-}" ] || fail "usage: $0 --check-only IMAGE"
    podman_works
    preflight "$2"
    check "$2"
    exit 0
    ;;
  "" | --self-test) ;;
  *) fail "usage: $0 [--self-test | --check-only IMAGE]" ;;
esac

podman_works
make_base
preflight "$BASE_IMAGE"
build
report_size "$IMAGE"
check "$IMAGE"
if [ "$ARCHIVE" != none ]; then
  t0=$SECONDS
  rm -f "$ARCHIVE"
  podman save --format docker-archive -o "$ARCHIVE" "$IMAGE"
  # What Apptainer's docker-archive bootstrap reads: manifest.json naming the image and its layers.
  tar -xOf "$ARCHIVE" manifest.json | grep -qF "${IMAGE#localhost/}\"" ||
    fail "$ARCHIVE has no manifest.json naming $IMAGE"
  say "saved: $ARCHIVE ($(du -h "$ARCHIVE" | cut -f1), $((SECONDS - t0)) s) for singularity/bids-ms.def"
fi
[ "${1:-}" = --self-test ] && self_test
say "passed: build ${BUILD_SECONDS} s, checks and example run inside the image"
