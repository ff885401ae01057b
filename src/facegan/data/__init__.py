"""Data: the prepared dataset format, its sources and the built-in synthetic faces."""
