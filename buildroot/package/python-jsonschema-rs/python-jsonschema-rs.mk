################################################################################
#
# python-jsonschema-rs
#
################################################################################

# siteedge imports jsonschema_rs unconditionally (controller/ocpp/dispatch.py),
# so the image needs it. Rust/maturin like upstream python-rpds-py: the
# download is vendored with cargo (crates.io) and hashed after vendoring.
PYTHON_JSONSCHEMA_RS_VERSION = 0.60.3
PYTHON_JSONSCHEMA_RS_SOURCE_PYPI = jsonschema_rs-$(PYTHON_JSONSCHEMA_RS_VERSION).tar.gz
PYTHON_JSONSCHEMA_RS_SITE_PYPI = https://files.pythonhosted.org/packages/36/17/383e687f63ba7c8c730ff770cb5ff70df32bd7f5114bfdcbd4387b19af54
PYTHON_JSONSCHEMA_RS_SITE = $(PYTHON_JSONSCHEMA_RS_SITE_PYPI)/$(PYTHON_JSONSCHEMA_RS_SOURCE_PYPI)?buildroot-path=filename
PYTHON_JSONSCHEMA_RS_SETUP_TYPE = maturin
PYTHON_JSONSCHEMA_RS_LICENSE = MIT
PYTHON_JSONSCHEMA_RS_LICENSE_FILES = crates/jsonschema/LICENSE

$(eval $(python-package))
