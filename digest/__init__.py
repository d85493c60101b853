"""digest: a daily email of the new arXiv papers on the topics you follow."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("digest")
except PackageNotFoundError:  # running from a source tree that was not installed
    __version__ = "0+unknown"
