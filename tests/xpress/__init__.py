"""Tests of the Xpress codecs (memfs.xpress)."""
