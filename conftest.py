"""Root conftest: activates the suite's pytest plugins for any run from the checkout.

`dmmconf run` also passes them with -p; pytest registers a plugin module once by
name, so listing the same module names here never registers them twice.
"""

pytest_plugins = [
    "harness.pytest_plugin",
    "reports.plugin",
    "harness.lab.fixtures",
    "harness.tester.fixtures",
    "harness.servers.fixtures",
]
