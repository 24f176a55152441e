"""The docs show the catalogue as it is in code."""

from pathlib import Path

from features.catalogue import catalogue_markdown

ROOT = Path(__file__).resolve().parents[2]


def test_features_doc_embeds_the_current_catalogue():
    assert catalogue_markdown() in (ROOT / "docs" / "features.md").read_text(encoding="utf-8")
