#!/usr/bin/env bash
# Builds docker/Dockerfile and runs the image's command without a Docker daemon or a GPU:
#
#   1. a Debian 12 (bookworm) root file system made with mmdebstrap becomes a local base image,
#      a stand-in for the CUDA devel image (no CUDA, no Python: the Dockerfile installs Python);
#   2. buildah builds docker/Dockerfile on it (--build-arg BASE_IMAGE=<the stand-in>);
#   3. buildah runs the image's own CMD with a results folder and a kernel-cache folder mounted,
#      as the image's non-root user;
#   4. the check passes when that command succeeds (the suite passes, every GPU test skipping
#      for want of a CUDA device) and the benchmark wrote a non-empty bench.json and bench.png.
#
# Run it as root on Debian or Ubuntu (`make docker-check` does); buildah and mmdebstrap are
# installed from the distribution's packages when missing. It downloads the Debian
# packages and the Python wheels of the cuda13 extra (CuPy and the NVIDIA wheels, about 1.6 GB).
#
# Settings (environment variables):
#   DOCKER_CHECK_DIR  work folder: base root file system, results, log (default build/docker-check)
#   CUDA_MAJOR        the CUDA major version whose pip extra is installed (default 13)
#   DEBIAN_MIRROR     the Debian mirror for mmdebstrap (default http://deb.debian.org/debian)
#   KEEP_IMAGES=1     keep the built image (the stand-in base is always kept, for the next run)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORK=${DOCKER_CHECK_DIR:-$ROOT/build/docker-check}
CUDA_MAJOR=${CUDA_MAJOR:-13}
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
BASE_IMAGE=localhost/gputape-check-base:bookworm
IMAGE=localhost/gputape-check:cuda$CUDA_MAJOR
NO_GPU_REASON="no CUDA device"  # how the GPU tests' skip reasons begin (tests/conftest.py)

# No daemon and no kernel overlay or user namespaces needed: the vfs storage driver copies
# layers, and chroot isolation runs the build's RUN steps in a plain chroot.
export STORAGE_DRIVER=vfs BUILDAH_ISOLATION=chroot
# The host's certificate store, so that apt and pip inside trust what the host trusts.
CERTS=(-v /etc/ssl/certs:/etc/ssl/certs:ro)

say() { printf '\n== docker-check: %s\n' "$*"; }
die() { printf 'docker-check: FAILED: %s\n' "$*" >&2; exit 1; }

[[ $(id -u) -eq 0 ]] || die "run as root (buildah's vfs storage and chroot isolation need it)"
if ! command -v buildah >/dev/null || ! command -v mmdebstrap >/dev/null; then
    command -v apt-get >/dev/null || die "buildah and mmdebstrap are missing, and there is no apt-get"
    say "installing buildah and mmdebstrap (Debian's packages)"
    apt-get update -qq && apt-get install -y -qq buildah mmdebstrap >/dev/null
fi
mkdir -p "$WORK"

container=""
cleanup() {
    if [[ -n $container ]]; then
        buildah rm "$container" >/dev/null || true
    fi
}
trap cleanup EXIT

# --- 1. the stand-in base image ----------------------------------------------------------------
if buildah inspect --type image "$BASE_IMAGE" >/dev/null 2>&1; then
    say "stand-in base $BASE_IMAGE already built"
else
    say "making the Debian bookworm stand-in base with mmdebstrap"
    rootfs=$WORK/bookworm-rootfs.tar
    mmdebstrap --variant=minbase --include=ca-certificates bookworm "$rootfs" "$DEBIAN_MIRROR"
    container=$(buildah from scratch)
    mountpoint=$(buildah mount "$container")
    tar --extract --numeric-owner --file "$rootfs" --directory "$mountpoint"
    buildah umount "$container" >/dev/null
    buildah config \
        --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        --cmd /bin/bash "$container"
    buildah commit --quiet "$container" "$BASE_IMAGE" >/dev/null
    buildah rm "$container" >/dev/null
    container=""
    rm -f "$rootfs"
fi

# --- 2. the image ------------------------------------------------------------------------------
say "building docker/Dockerfile on $BASE_IMAGE (CUDA_MAJOR=$CUDA_MAJOR)"
# --format docker: Docker's image format, where SHELL is honoured as Docker honours it.
buildah bud --format docker --pull=never --network host "${CERTS[@]}" \
    --build-arg BASE_IMAGE="$BASE_IMAGE" --build-arg CUDA_MAJOR="$CUDA_MAJOR" \
    --file "$ROOT/docker/Dockerfile" --tag "$IMAGE" "$ROOT"

# --- 3. the image's command --------------------------------------------------------------------
user=$(buildah inspect --type image --format '{{.Docker.Config.User}}' "$IMAGE")
mapfile -t cmd < <(buildah inspect --type image \
    --format '{{range .Docker.Config.Cmd}}{{println .}}{{end}}' "$IMAGE")
[[ ${#cmd[@]} -gt 0 ]] || die "the image has no CMD"
[[ -n $user && ${user%%:*} != 0 && ${user%%:*} != root ]] || die "the image runs as root ($user)"

results=$WORK/results
cache=$WORK/kernel-cache
rm -rf "$results"
mkdir -p "$results" "$cache"
chown "$user" "$results" "$cache"  # as the workflow's volumes: writable by the image's user
log=$WORK/run.log

say "running the image's command as $user: ${cmd[*]}"
container=$(buildah from --pull=never "$IMAGE")
status=0
buildah run --user "$user" \
    -v "$results:/results" -v "$cache:/var/cache/gputape" \
    "$container" -- "${cmd[@]}" 2>&1 | tee "$log" || status=$?
[[ $status -eq 0 ]] || die "the image's command exited with status $status (log: $log)"

# --- 4. what it must have done -----------------------------------------------------------------
say "checking the run"
grep -q "skipped: $NO_GPU_REASON" "$log" \
    || die "no GPU test was skipped for want of a CUDA device (log: $log)"
grep -E '^[0-9]+ (passed|skipped)' "$log" | sed 's/^/pytest: /' \
    || die "no pytest summary line in the log ($log)"
for file in bench.json bench.png; do
    [[ -s $results/$file ]] || die "the benchmark did not write a non-empty /results/$file"
done
ls -l "$results"

if [[ ${KEEP_IMAGES:-0} != 1 ]]; then
    buildah rm "$container" >/dev/null
    container=""
    buildah rmi "$IMAGE" >/dev/null || true
fi
say "PASSED: image built on $BASE_IMAGE, suite passed without a GPU, bench.json and bench.png written to $results"
