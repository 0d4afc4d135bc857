# syntax=docker/dockerfile:1
# vipam image: one entrypoint (`vipam`) for the controller and the speaker.
#
#   docker build -t ghcr.io/vipam/vipam:0.1.0 .
#
# Two stages: the builder installs the pinned, hash-checked dependencies (requirements.lock)
# and the project wheel into a virtualenv; the final stage is the same slim Python base with that
# virtualenv and nothing else (no pip in it, no compilers, no build tools, no source tree).
# Both stages must use the same base: the venv's interpreter links to the base's Python.
#
# CI builds this file unchanged with podman (`scripts/image build`), on a stand-in for the python
# image made from Debian's packages and passed as PYTHON_IMAGE; tests/image runs the result.

ARG PYTHON_IMAGE=python:3.11.14-slim-trixie

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
# Build tools stay in this stage: setuptools builds the project wheel, outside the runtime venv.
RUN python -m pip install --no-cache-dir setuptools==80.9.0 wheel==0.45.1 \
    && python -m venv --without-pip /opt/vipam
WORKDIR /src
# Dependencies first, so that a code change does not re-download them. No bytecode yet: the
# unused parts of the dependencies go first (scripts/slim_venv.py: 54 MB of generated Kubernetes
# API classes and models, MAC-vendor tables), then everything left is compiled once, below.
COPY requirements.lock scripts/slim_venv.py ./
RUN python -m pip --python /opt/vipam/bin/python install --no-cache-dir --no-deps --no-compile \
        --require-hashes --only-binary=:all: -r requirements.lock \
    && /opt/vipam/bin/python slim_venv.py
COPY pyproject.toml README.md ./
COPY pools ./pools
COPY ccm ./ccm
# Bytecode compiled ahead (unchecked-hash: valid without comparing timestamps, identical on every
# build): with a read-only root filesystem Python cannot cache it, and would otherwise compile
# every module it imports at each start.
RUN python -m pip wheel --no-cache-dir --no-deps --no-build-isolation -w /tmp/wheels . \
    && python -m pip --python /opt/vipam/bin/python install --no-cache-dir --no-deps --no-compile \
        /tmp/wheels/*.whl \
    && /opt/vipam/bin/python -m compileall -q -j 0 --invalidation-mode unchecked-hash /opt/vipam/lib \
    && /opt/vipam/bin/vipam version

FROM ${PYTHON_IMAGE}
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="vipam" \
      org.opencontainers.image.description="Kubernetes LoadBalancer IP allocator for clusters without a cloud: controller and ARP/NDP/BGP speaker" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/vipam/vipam"
# A named user for UID 65532 (the manifests' runAsUser), so tools that look the user up work.
RUN groupadd --gid 65532 vipam \
    && useradd --uid 65532 --gid 65532 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin vipam
COPY --from=builder /opt/vipam /opt/vipam
ENV PATH=/opt/vipam/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
USER 65532:65532
# Health, readiness, metrics and the status page.
EXPOSE 8081
ENTRYPOINT ["vipam"]
CMD ["--help"]
