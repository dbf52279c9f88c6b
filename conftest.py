"""Root conftest of the project's own test suite."""

# pytester drives whole pytest sessions in the tests of the plugin; it must be enabled at the root.
pytest_plugins = ["pytester"]
