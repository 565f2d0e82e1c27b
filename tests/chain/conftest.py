"""Chain fixtures live in tests/conftest.py (`chain_settings`, `keyed_world`): the console's tests use them too."""
