"""Test helpers: real servers on 127.0.0.1 and builders, imported as `helpers.<module>`.

pytest puts `tests/` on sys.path (`pythonpath` in pyproject.toml), so nothing here needs a
sys.path insert; the fixtures that use these helpers live in `tests/conftest.py`.
"""
