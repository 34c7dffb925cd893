"""Sphinx fixes for the LLE book's site (loaded through `sphinx.local_extensions` in _config.yml).

1. Citations: one author-year style across the book. The chapters cite with ``{footcite:p}`` and list their
   references at the end with ``{footbibliography}``. The ``lle_foot_author_year`` referencing style registered here
   writes each citation as "(Guo et al., 2020)", a link to its entry in the chapter's list (instead of the footnote
   number "[1]"), and the chapter's list and the bibliography page label the entries the same way, "Guo et al.,
   2020" (the ``lle_author_year`` pybtex style, sorted by author and year on the bibliography page).
2. Inline scripts written twice on every page (console: "Identifier 'THEBE_JS_URL' has already been declared"):
   Sphinx 7.4 adds an inline script registered after ``Builder.init()`` once with the file name ``None`` (straight
   into the builder) and once more with ``''`` (from the registry, in ``prepare_writing``); the two compare unequal,
   so sphinx-thebe's and sphinx-togglebutton's ``const``/``var`` lines appear twice. The builder's list is
   normalised to ``''`` before writing, so that the second copy is recognised as a duplicate.
3. MathJax only where there is math: Sphinx adds MathJax to a page with equations or whose toctree includes one,
   and the root page's toctree includes every chapter, so the landing page loaded 1.2 MB of MathJax for nothing.
   Here a page counts only its own equations (the book's pages are not assembled from included documents).
4. Downloads: the page's ".ipynb" download button links to ``_sources/<page>.ipynb``, the stripped source. After
   an HTML build, the executed notebook that myst-nb wrote (``_build/jupyter_execute/<page>.ipynb``) replaces it,
   so a reader downloads the chapter with its outputs.
"""

from __future__ import annotations

from collections import Counter

from pybtex.plugin import register_plugin
from pybtex.style.formatting.unsrt import Style as UnsrtStyle
from pybtex.style.labels import BaseLabelStyle


def _last_names(person) -> str:
    # "van der Walt", as the in-text citations write it
    return " ".join(part.render_as("text") for part in [*person.rich_prelast_names, *person.rich_last_names])


class AuthorYearLabelStyle(BaseLabelStyle):
    """Labels such as "Guo et al., 2020", "Wang and Bovik, 2004", "Land, 1971" (a, b, ... when two agree)."""

    def format_label(self, entry) -> str:
        persons = entry.persons.get("author") or entry.persons.get("editor") or []
        if not persons:
            who = entry.fields.get("organization") or entry.fields.get("title", entry.key)
        elif len(persons) == 1:
            who = _last_names(persons[0])
        elif len(persons) == 2:
            who = f"{_last_names(persons[0])} and {_last_names(persons[1])}"
        else:
            who = f"{_last_names(persons[0])} et al."
        who = who.replace("{", "").replace("}", "")
        year = entry.fields.get("year", "n.d.")
        return f"{who}, {year}"

    def format_labels(self, sorted_entries):
        labels = [self.format_label(entry) for entry in sorted_entries]
        count, seen = Counter(labels), Counter()
        for label in labels:
            if count[label] == 1:
                yield label
            else:
                yield label + chr(ord("a") + seen[label])
                seen[label] += 1


class AuthorYearStyle(UnsrtStyle):
    """The unsrt entry format with author-year labels, sorted by author, year and title."""

    default_label_style = "lle_author_year"
    default_sorting_style = "author_year_title"


# --- author-year citations that link to the chapter's footnoted reference list ------------------------------------

def _foot_author_year_style():
    from dataclasses import dataclass, field

    from pybtex.style.template import join, node
    from sphinxcontrib.bibtex.style.referencing import BracketStyle, GroupReferenceStyle, PersonStyle
    from sphinxcontrib.bibtex.style.referencing.basic_foot import BasicFootTextualReferenceStyle
    from sphinxcontrib.bibtex.style.template import FootReferenceInfo, FootReferenceText, year

    class AuthorYearFootText(FootReferenceText):
        """A footnote reference carrying its author-year text; `_footnote_links` turns it into a link."""

        def render(self, backend):
            [refnode] = super().render(backend)
            refnode["lle_label"] = "".join(str(part) for part in self.parts)
            refnode["lle_key"] = self.info[0].key
            return [refnode]

    @node
    def foot_link(children, data):
        info = data["reference_info"]
        assert isinstance(info, FootReferenceInfo)
        return AuthorYearFootText(info, join[children].format_data(data).render_as("text"))

    @dataclass
    class Parenthetical(BasicFootTextualReferenceStyle):
        person: PersonStyle = field(default_factory=PersonStyle)
        bracket: BracketStyle = field(default_factory=lambda: BracketStyle(sep="; "))

        def role_names(self):
            return ["p", "ps"]

        def outer(self, role_name, children):
            return self.bracket.outer(children, brackets=True, capfirst=False)

        def inner(self, role_name):
            return foot_link[join(sep=", ")[self.person.author_or_editor_or_title(full="s" in role_name), year]]

    @dataclass
    class Textual(BasicFootTextualReferenceStyle):
        def outer(self, role_name, children):
            return self.bracket.outer(children, brackets=False, capfirst="c" in role_name)

        def inner(self, role_name):
            return join(sep=" ")[
                self.person.author_or_editor_or_title(full="s" in role_name),
                foot_link[join["(", year, ")"]],
            ]

    @dataclass
    class FootAuthorYearReferenceStyle(GroupReferenceStyle):
        person: PersonStyle = field(default_factory=PersonStyle)

        def __post_init__(self):
            self.styles.extend([Parenthetical(person=self.person), Textual(person=self.person)])
            super().__post_init__()

    return FootAuthorYearReferenceStyle


def _book_labels(app) -> dict:
    """Every entry's author-year label, as the bibliography page shows it ("Guo et al., 2020", a/b where two agree)."""
    labels = getattr(app.env, "_lle_labels", None)
    if labels is None:
        from pybtex.plugin import find_plugin

        entries = app.env.get_domain("cite").bibdata.data.entries
        ordered = list(find_plugin("pybtex.style.sorting", "author_year_title")().sort(list(entries.values())))
        labels = dict(zip((entry.key for entry in ordered), AuthorYearLabelStyle().format_labels(ordered)))
        app.env._lle_labels = labels
    return labels


def _footnote_links(app, doctree) -> None:
    """Replace the author-year footnote references by plain links to their footnotes (ids kept for backlinks), and
    label the footnotes of the chapter's reference list as the bibliography page does."""
    import docutils.nodes

    labels = None
    footnote_labels = {}
    for ref in list(doctree.findall(docutils.nodes.footnote_reference)):
        text = ref.get("lle_label")
        if not text or not ref.get("refid"):
            continue
        labels = labels if labels is not None else _book_labels(app)
        label = labels.get(ref.get("lle_key"))
        if label and not text.startswith("("):
            text = label  # parenthetical: exactly the bibliography's label (with its a/b suffix)
        if label:
            footnote_labels[ref["refid"]] = label
        link = docutils.nodes.reference("", text, refid=ref["refid"], internal=True, classes=["lle-cite"])
        link["ids"] = list(ref["ids"])
        ref.replace_self(link)
    for footnote in doctree.findall(docutils.nodes.footnote):
        label = next((footnote_labels[i] for i in footnote["ids"] if i in footnote_labels), None)
        if label and footnote.children and isinstance(footnote[0], docutils.nodes.label):
            footnote[0].children = []
            footnote[0] += docutils.nodes.Text(label)


def _dedupe_inline_scripts(app, env=None) -> None:
    builder = app.builder
    js_files = getattr(builder, "_js_files", None)
    if js_files is None:
        return
    from sphinx.builders.html._assets import _JavaScript

    normalised = []
    for js in js_files:
        if js.filename is None:
            js = _JavaScript("", priority=js.priority, **js.attributes)
        if js not in normalised:
            normalised.append(js)
    js_files[:] = normalised


def _serve_executed_notebooks(app, exception) -> None:
    if exception is not None or getattr(app.builder, "format", None) != "html":
        return
    import shutil
    from pathlib import Path

    executed = Path(app.outdir).parent / "jupyter_execute"
    sources = Path(app.outdir) / "_sources"
    copied = 0
    for docname in app.env.found_docs:
        source = sources / f"{docname}.ipynb"
        built = executed / f"{docname}.ipynb"
        if source.is_file() and built.is_file():
            shutil.copyfile(built, source)
            copied += 1
    if copied:
        from sphinx.util import logging

        logging.getLogger(__name__).info(f"lle_book: {copied} executed notebooks served as the .ipynb downloads")


def _own_equations_only() -> None:
    from sphinx.domains.math import MathDomain

    def has_equations(self, docname=None):
        if not docname:
            return any(self.data["has_equations"].values())
        return self.data["has_equations"].get(docname, False)

    MathDomain.has_equations = has_equations


def setup(app):
    _own_equations_only()
    register_plugin("pybtex.style.labels", "lle_author_year", AuthorYearLabelStyle)
    register_plugin("pybtex.style.formatting", "lle_author_year", AuthorYearStyle)
    from sphinxcontrib.bibtex.plugin import register_plugin as register_bibtex_plugin

    register_bibtex_plugin("sphinxcontrib.bibtex.style.referencing", "lle_foot_author_year", _foot_author_year_style())
    app.connect("doctree-read", _footnote_links)
    # after reading (sphinx-thebe adds its inline script at env-before-read-docs), before prepare_writing
    app.connect("env-updated", lambda app, env: _dedupe_inline_scripts(app) or [])
    app.connect("build-finished", _serve_executed_notebooks)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
