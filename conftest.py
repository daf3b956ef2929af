pytest_plugins = ["critest.testbed.pytest_fixtures"]
