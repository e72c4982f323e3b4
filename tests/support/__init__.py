"""What tests share: fixtures (registered in tests/conftest.py), programs, hostile inputs, helpers."""
