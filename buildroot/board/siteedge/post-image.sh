#!/bin/sh
# Buildroot post-image script (BR2_ROOTFS_POST_IMAGE_SCRIPT): assemble
# sdcard.img from boot.vfat, rootfs.ext4 and an empty data.ext4.
set -eu

BOARD_DIR="$(dirname "$0")"

exec support/scripts/genimage.sh -c "${BOARD_DIR}/genimage.cfg"
