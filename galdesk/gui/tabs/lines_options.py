"""The Lines tab's fixed choices: continuum options with their tooltip (the pens and legend names of the component
curves are the plot's, :mod:`galdesk.gui.widgets.line_plot`). No science here: the choices map onto
:class:`galdesk.lines.config.FitConfig` fields."""

from __future__ import annotations

__all__ = ["CONTINUUM_CHOICES", "CONTINUUM_TIP"]

#: Continuum choices of the combo box -> (FitConfig.continuum, stellar_powerlaw, agn_windows)
CONTINUUM_CHOICES = {"auto": ("auto", False, "masks"), "stellar": ("stellar", False, "masks"),
                     "stellar + power law": ("stellar", True, "masks"),
                     "AGN: host + power law + Fe II": ("agn", False, "masks"),
                     "AGN, quasar-catalogue windows": ("agn", False, "qso"),
                     "local": ("local", False, "masks")}

CONTINUUM_TIP = ("Continuum under the lines: 'stellar' fits stellar-population templates to the whole spectrum "
                 "(emission masked), so Balmer emission sits in the right absorption trough; '+ power law' adds a "
                 "featureless AGN continuum (Seyfert hosts); 'AGN' fits host + power law + broad Fe II with the broad "
                 "lines masked (quasars; the dashed curve is the continuum without Fe II); 'local' is a straight line "
                 "(plus a Gaussian Balmer trough); 'auto' decides from the spectrum (stars; a power law or the AGN "
                 "continuum only where the data need them; the reason is in the summary)")
