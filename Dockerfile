# bids-ms container image: FreeSurfer 7.3.2 + bids-ms on Ubuntu 22.04 (Python 3.10).
#
#   docker build -t bids-ms/bids-ms:<version> --build-arg VERSION=<version> .
#   docker run --rm --read-only --tmpfs /tmp \
#       -v /data/bids:/data:ro -v /data/derivatives/bids-ms:/out \
#       -v $HOME/freesurfer:/fs_license:ro -e FS_LICENSE=/fs_license/license.txt \
#       bids-ms/bids-ms:<version> /data /out participant --participant-label 01
#
# Three stages: (1) FreeSurfer unpacked from the official release archive with the parts that
# recon-all never uses left out, (2) bids-ms and its Python dependencies built into a virtual
# environment, (3) the runtime image, which copies both and holds no compiler, no download tool
# and no FreeSurfer licence. See docs/containers.md for usage.

ARG UBUNTU_IMAGE=ubuntu:jammy-20240911.1

# ---------------------------------------------------------------------------------------------
# Stage 1: FreeSurfer 7.3.2 from the official archive.
# ---------------------------------------------------------------------------------------------
FROM ${UBUNTU_IMAGE} AS freesurfer

ARG FS_VERSION=7.3.2
ARG FS_ARCHIVE=freesurfer-linux-ubuntu22_x86_64-7.3.2-20220804-6354275.tar.gz
# Optional: the archive's SHA-256, checked when given (--build-arg FS_SHA256=...).
ARG FS_SHA256=""

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/*

# Left out (recon-all -all does not read them): sample and training subjects, fsaverage3-6 and
# fsaverage_sym (fsaverage itself is kept: recon-all maps labels from it), FS-FAST, MATLAB code,
# tractography (TRACULA) and its training data, the GUIs (freeview, tksurfer, Qt, VTK, Tcl), CUDA,
# the deep-learning models and their Python packages (SynthSeg/SynthSR/SAMSEG atlases, torch,
# tensorflow), subfield atlases and the Monte-Carlo cluster tables. The Desikan-Killiany
# classifier average/?h.DKaparc.atlas.acfb40.noaparc.i12.2016-08-02.gcs and the folding atlas
# average/?h.folding.atlas.*.tif stay, as do the GCA atlases recon-all registers to.
RUN curl -fsSL --retry 5 --retry-delay 10 -o /tmp/freesurfer.tar.gz \
        "https://surfer.nmr.mgh.harvard.edu/pub/dist/freesurfer/${FS_VERSION}/${FS_ARCHIVE}" \
    && if [ -n "${FS_SHA256}" ]; then echo "${FS_SHA256}  /tmp/freesurfer.tar.gz" | sha256sum -c -; fi \
    && tar -xzf /tmp/freesurfer.tar.gz -C /opt --no-same-owner \
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
    && rm -f /tmp/freesurfer.tar.gz \
    && test -x /opt/freesurfer/bin/recon-all \
    && test -f /opt/freesurfer/average/lh.DKaparc.atlas.acfb40.noaparc.i12.2016-08-02.gcs \
    && test -d /opt/freesurfer/subjects/fsaverage/surf \
    && rm -f /opt/freesurfer/license.txt /opt/freesurfer/.license \
    && chmod -R a+rX /opt/freesurfer

# ---------------------------------------------------------------------------------------------
# Stage 2: bids-ms and its dependencies in /opt/venv.
# ---------------------------------------------------------------------------------------------
FROM ${UBUNTU_IMAGE} AS build

ENV DEBIAN_FRONTEND=noninteractive \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv python3-dev build-essential \
    && rm -rf /var/lib/apt/lists/*

RUN python3 -m venv /opt/venv \
    && /opt/venv/bin/python -m pip install --upgrade "pip>=24" "setuptools>=68" "wheel>=0.43"

COPY . /src/bids-ms
# The harmonize extra (ComBat through neuroCombat) and the BIDS validator are part of the
# image so that no feature needs a network connection at run time.
RUN /opt/venv/bin/python -m pip install "/src/bids-ms[harmonize]" "bids-validator-deno>=2.0,<4" \
    && /opt/venv/bin/bids-ms --version

# ---------------------------------------------------------------------------------------------
# Stage 3: the runtime image.
# ---------------------------------------------------------------------------------------------
FROM ${UBUNTU_IMAGE} AS runtime

ENV DEBIAN_FRONTEND=noninteractive \
    LANG=C.UTF-8 \
    LC_ALL=C.UTF-8

# What recon-all and the FreeSurfer binaries need at run time: tcsh (recon-all is a tcsh script),
# bc, perl (the MNI N3 tools), gawk, time, libgomp1 (OpenMP), libquadmath0, libcrypt1,
# zlib and libstdc++; python3 runs bids-ms itself.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        bc \
        ca-certificates \
        gawk \
        libcrypt1 \
        libgomp1 \
        libquadmath0 \
        libstdc++6 \
        perl \
        python3 \
        tcsh \
        time \
        zlib1g \
    && rm -rf /var/lib/apt/lists/*

COPY --from=freesurfer /opt/freesurfer /opt/freesurfer
COPY --from=build /opt/venv /opt/venv

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
    PERL5LIB=/opt/freesurfer/mni/lib/perl5/5.8.5:/opt/freesurfer/mni/share/perl5 \
    MNI_PERL5LIB=/opt/freesurfer/mni/lib/perl5/5.8.5 \
    PATH=/opt/venv/bin:/opt/freesurfer/bin:/opt/freesurfer/mni/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

# Nothing is written to $HOME or into the image: with `docker run --read-only --tmpfs /tmp` every
# cache goes to /tmp, and nipype neither phones home nor needs the network. LOGNAME names a user
# for Python's getpass when `docker run --user` gives a uid without a passwd entry. One thread per
# process unless --omp-nthreads says otherwise (nipype parallelises over processes; recon-all's
# -openmp sets its own).
ENV HOME=/tmp \
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

ARG UBUNTU_IMAGE
ARG VERSION=0+unknown
ARG VCS_REF=unknown
ARG BUILD_DATE=unknown
ARG IMAGE_TAG=bids-ms/bids-ms:latest
ARG SOURCE_URL=""

# Recorded in the derivatives' dataset_description.json (GeneratedBy.Container).
ENV BIDS_MS_CONTAINER=docker \
    BIDS_MS_CONTAINER_TAG=${IMAGE_TAG}

# Mount points: /data (BIDS, read-only), /out (derivatives), /work (nipype work directory),
# /fs_license (a folder holding the FreeSurfer licence, read-only).
RUN useradd --create-home --home-dir /home/bidsms --shell /bin/bash --uid 1000 --user-group bidsms \
    && mkdir -p /data /out /work /fs_license \
    && chmod a+rwx /out /work \
    && bids-ms --version \
    && recon-all --version

# The non-root user bidsms, by number so that any runtime resolves it.
USER 1000:1000
WORKDIR /tmp

# OCI labels. The source URL comes from the build (CI passes the repository's address); the
# registry tooling (docker/metadata-action) adds the same labels again.
LABEL org.opencontainers.image.title="bids-ms" \
      org.opencontainers.image.description="BIDS-App: FreeSurfer recon-all, morphometric-similarity networks, group statistics and imaging transcriptomics (Martins et al., PAIN 2022)" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${VCS_REF}" \
      org.opencontainers.image.created="${BUILD_DATE}" \
      org.opencontainers.image.source="${SOURCE_URL}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="${UBUNTU_IMAGE}" \
      org.freesurfer.version="7.3.2"

ENTRYPOINT ["bids-ms"]
CMD ["--help"]
