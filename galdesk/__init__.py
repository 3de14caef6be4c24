"""galdesk: a desktop application for galaxy astronomers.

This module holds the version only and imports nothing heavy, so that the window opens fast.
"""

__version__ = "0.1.0"
__all__ = ["__version__"]
