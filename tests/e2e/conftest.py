"""Fixtures of the browser tests; they live in `ui_support` with the helpers the tests import."""

from ui_support import browser, home, page, server  # noqa: F401 (pytest finds fixtures by name)
