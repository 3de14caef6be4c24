"""The graphical interface: the ONLY package of galdesk that imports PySide6 / pyqtgraph."""
