################################################################################
#
# python-ocpp
#
################################################################################

PYTHON_OCPP_VERSION = 2.1.0
PYTHON_OCPP_SOURCE = ocpp-$(PYTHON_OCPP_VERSION).tar.gz
PYTHON_OCPP_SITE = https://files.pythonhosted.org/packages/4f/01/a5fc2db31df55418cc57cfc099cad110883e31950b9e74d8238d8b251eea
# [build-system] of the sdist: poetry-core>=2,<3 (host-python-poetry-core)
PYTHON_OCPP_SETUP_TYPE = poetry
PYTHON_OCPP_LICENSE = MIT
PYTHON_OCPP_LICENSE_FILES = LICENSE

$(eval $(python-package))
