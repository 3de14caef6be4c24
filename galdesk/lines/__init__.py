"""Emission-line engine: line list, Gaussian fitting with lmfit, broad-component test, BPT classification, batch.

Science core without Qt or torch. Submodules: :mod:`~galdesk.lines.linelist`, :mod:`~galdesk.lines.model`,
:mod:`~galdesk.lines.fit`, :mod:`~galdesk.lines.bpt`, :mod:`~galdesk.lines.batch`, :mod:`~galdesk.lines.vectorized`.
They are not imported here, so ``import galdesk.lines`` stays cheap (lmfit alone costs ~1 s).
"""

__all__ = ["linelist", "model", "fit", "bpt", "batch", "vectorized"]
