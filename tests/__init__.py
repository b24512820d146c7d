"""The test suite (a package, so that collecting tests/conftest.py puts the project root, not
tests/, on sys.path: the test folders mirror the package names and must not shadow them)."""
