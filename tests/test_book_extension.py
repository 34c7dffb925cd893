"""_ext/lle_book.py: the author-year labels that the chapters' citations and the bibliography page share."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from pybtex.database import parse_file

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("lle_book", ROOT / "_ext" / "lle_book.py")
lle_book = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = lle_book
spec.loader.exec_module(lle_book)


def labels() -> dict[str, str]:
    entries = parse_file(str(ROOT / "references.bib")).entries
    style = lle_book.AuthorYearLabelStyle()
    return dict(zip(entries.keys(), style.format_labels(entries.values())))


def test_every_entry_has_a_unique_author_year_label():
    found = labels()
    assert len(set(found.values())) == len(found)
    for key, label in found.items():
        who, _, year = label.rpartition(", ")
        assert who and year[:4].isdigit(), (key, label)


def test_labels_read_like_the_citations():
    found = labels()
    assert found["guo2020zero"] == "Guo et al., 2020"
    assert found["vanderwalt2014scikit"] == "van der Walt et al., 2014"   # the "von" part is kept
    two = [label for label in found.values() if " and " in label]
    assert all(label.count(" and ") == 1 and "et al." not in label for label in two)
