"""Rewrite the generated line-fit column table in docs/vetting_and_export.md from galdesk.catalog.schema.

Run after changing the schema: ``python scripts/update_schema_docs.py``. ``tests/test_catalog_schema.py`` fails
while the doc and the schema differ.
"""

from pathlib import Path

from galdesk.catalog.schema import markdown_table

DOC = Path(__file__).resolve().parents[1] / "docs" / "vetting_and_export.md"
BEGIN, END = "<!-- schema:begin -->", "<!-- schema:end -->"


def render(text: str) -> str:
    """``text`` with the block between the markers replaced by the schema's table."""
    a = text.index(BEGIN) + len(BEGIN)
    b = text.index(END)
    return text[:a] + "\n" + markdown_table() + "\n" + text[b:]


if __name__ == "__main__":
    DOC.write_text(render(DOC.read_text(encoding="utf-8")), encoding="utf-8")
    print(f"updated {DOC}")
