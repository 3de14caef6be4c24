"""File > Export from the window: rows and columns chosen, FITS written and read back with astropy."""

import numpy as np
from astropy.table import Table  # noqa: E402


def test_export_dialog_writes_vetted_rows(qtbot, shared_data, tmp_path):
    from galdesk.gui.app import make_app
    from galdesk.gui.dialogs.export_dialog import ExportDialog
    from galdesk.project import Project
    from galdesk.services.ingest import ingest
    from galdesk.vetting import VetSession

    make_app()
    ingest(sorted((shared_data / "images/gz1/jpeg").glob("*.jpeg"))[:5], tmp_path / "p", workers=1)
    proj = Project.open(tmp_path / "p.galdesk")
    ids = [str(i) for i in proj.objects["id"]]
    s = VetSession(proj, vetter="vera")
    s.decide(ids[1], "spiral", note="two arms")
    s.decide(ids[3], "elliptical")
    dlg = ExportDialog(proj)
    qtbot.addWidget(dlg)
    out = tmp_path / "cat.fits"
    dlg.path.setText(str(out))
    dlg.only.setCurrentIndex(dlg.only.findData("vetted"))
    with qtbot.waitSignal(dlg.exported, timeout=30000):
        dlg.export(confirm=False)
    t = Table.read(out)
    assert sorted(str(i).strip() for i in t["id"]) == sorted([ids[1], ids[3]])
    assert "vet_label" in t.colnames
    row = {str(i).strip(): k for k, i in enumerate(t["id"])}
    assert str(t["vet_label"][row[ids[1]]]).strip() == "spiral"
    # a second export to the same file replaces it (the dialog asked; here confirm=False answers yes)
    dlg2 = ExportDialog(proj)
    qtbot.addWidget(dlg2)
    dlg2.path.setText(str(out))
    with qtbot.waitSignal(dlg2.exported, timeout=30000):
        dlg2.export(confirm=False)
    assert len(Table.read(out)) == 5
    assert np.all(np.isin([ids[1], ids[3]], [str(i).strip() for i in Table.read(out)["id"]]))
