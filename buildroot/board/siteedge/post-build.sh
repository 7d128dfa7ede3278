#!/bin/sh
# Buildroot post-build script (BR2_ROOTFS_POST_BUILD_SCRIPT), run with the
# target directory as $1 before the root filesystem images are made.
set -eu

TARGET="${1:?usage: post-build.sh TARGET_DIR}"

# The rootfs is mounted read-only; everything persistent lives on the data
# partition (genimage.cfg: label "data"). nofail: a damaged data partition
# must not stop the box from booting far enough to be reached; the services
# that need it (RequiresMountsFor=/data/...) do not start without it.
mkdir -p "${TARGET}/data"
if ! grep -q '^LABEL=data[[:space:]]' "${TARGET}/etc/fstab"; then
	printf 'LABEL=data\t/data\text4\tdefaults,noatime,nofail\t0\t2\n' \
		>>"${TARGET}/etc/fstab"
fi
