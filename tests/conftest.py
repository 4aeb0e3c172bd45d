from tests.conftest_services import *  # noqa
