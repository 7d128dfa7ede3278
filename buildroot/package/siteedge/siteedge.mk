################################################################################
#
# siteedge
#
################################################################################

# The application is this repository itself (the BR2_EXTERNAL tree is its
# buildroot/ folder). Keep the version equal to [project] version in
# pyproject.toml (checked by tests/unit/test_buildroot_tree.py).
SITEEDGE_VERSION = 0.1.0
SITEEDGE_SITE = $(realpath $(BR2_EXTERNAL_SITEEDGE_PATH)/..)
SITEEDGE_SITE_METHOD = local
# pyproject.toml [build-system]: setuptools.build_meta
SITEEDGE_SETUP_TYPE = setuptools
SITEEDGE_LICENSE = Apache-2.0
SITEEDGE_LICENSE_FILES = LICENSE

# The local method rsyncs the whole repository: leave out this tree, build
# output, virtualenvs, caches and stale egg-info (it would shadow the real
# package list), tests and docs (not part of the wheel).
SITEEDGE_OVERRIDE_SRCDIR_RSYNC_EXCLUSIONS = \
	--exclude=/buildroot \
	--exclude=/output \
	--exclude=/build \
	--exclude=/dist \
	--exclude=/var \
	--exclude=/.venv \
	--exclude=/tests \
	--exclude=/docs \
	--exclude=/node_modules \
	--exclude='*.egg-info' \
	--exclude=__pycache__ \
	--exclude=.mypy_cache \
	--exclude=.pytest_cache \
	--exclude=.ruff_cache

# Home "-": state lives in /data/siteedge (tmpfiles.d), not in the rootfs.
# dialout: RS-485 adapters (/dev/ttyAMA*, /dev/ttySC*, /dev/ttyUSB*).
define SITEEDGE_USERS
	siteedge -1 siteedge -1 * - - dialout siteedge EV site controller
endef

define SITEEDGE_INSTALL_INIT_SYSTEMD
	$(INSTALL) -D -m 0644 $(SITEEDGE_PKGDIR)/siteedge.service \
		$(TARGET_DIR)/usr/lib/systemd/system/siteedge.service
	$(INSTALL) -D -m 0644 $(SITEEDGE_PKGDIR)/siteedge-tmpfiles.conf \
		$(TARGET_DIR)/usr/lib/tmpfiles.d/siteedge.conf
endef

$(eval $(python-package))
