"""memfs: mount Windows memory images (hibernation files, crash dumps, raw images) as files."""

__version__ = "0.1.0"
