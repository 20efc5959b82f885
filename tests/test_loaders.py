"""Loaders: every format from real bytes written to tmp_path, including broken files."""

from __future__ import annotations

import codecs
import importlib.util
import io
import random
import subprocess
import sys
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ragkeep.ingest.loaders import (
    EmptyDocumentError,
    LoaderError,
    load_document,
    supported_suffixes,
)
from ragkeep.ingest.loaders import base as loaders_base
from ragkeep.models import LoadedDocument

from docfactory import make_docx, make_html, make_pdf

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "examples" / "docs"


@pytest.fixture
def load(tmp_path: Path) -> Callable[[str, bytes], LoadedDocument]:
    """Write the bytes to a real file, then load it the way the indexer does."""

    def _load(name: str, data: bytes) -> LoadedDocument:
        path = tmp_path / name
        path.write_bytes(data)
        return load_document(path.read_bytes(), path)

    return _load


def _random_bytes(n: int = 4096) -> bytes:
    return random.Random(20240601).randbytes(n)


def test_supported_suffixes() -> None:
    assert supported_suffixes() == frozenset(
        {".txt", ".md", ".markdown", ".html", ".htm", ".pdf", ".docx"}
    )


# --- plain text -------------------------------------------------------------


def test_text_title_and_newlines(load: Callable[[str, bytes], LoadedDocument]) -> None:
    doc = load("notes.txt", b"\r\n  \r\n  Watering schedule  \r\nTwice a week.\rDeeply.\r\n")
    assert doc.title == "Watering schedule"
    assert "\r" not in doc.text
    assert "Twice a week.\nDeeply." in doc.text
    assert doc.pages == ()
    assert doc.warnings == ()


def test_text_long_first_line_is_capped(load: Callable[[str, bytes], LoadedDocument]) -> None:
    doc = load("long.txt", ("word " * 100).encode())
    assert len(doc.title) <= 120
    assert doc.title.endswith("…")


def test_text_utf8_bom_stripped(load: Callable[[str, bytes], LoadedDocument]) -> None:
    doc = load("bom.txt", codecs.BOM_UTF8 + "Crème brûlée\n".encode())
    assert doc.text == "Crème brûlée\n"
    assert doc.title == "Crème brûlée"
    assert doc.warnings == ()


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
def test_text_utf16_with_bom(load: Callable[[str, bytes], LoadedDocument], codec: str) -> None:
    bom = codecs.BOM_UTF16_LE if codec.endswith("le") else codecs.BOM_UTF16_BE
    doc = load("wide.txt", bom + "Größe: 25 °C\r\nzweite Zeile".encode(codec))
    assert doc.text == "Größe: 25 °C\nzweite Zeile"
    assert doc.title == "Größe: 25 °C"
    assert doc.warnings == ()


def test_text_invalid_utf8_falls_back_to_cp1252(
    load: Callable[[str, bytes], LoadedDocument],
) -> None:
    doc = load("legacy.txt", "“Smart quotes” – café".encode("cp1252"))
    assert doc.text == "“Smart quotes” – café"
    assert doc.warnings == ("not valid UTF-8; decoded as cp1252",)


def test_text_falls_back_to_latin1(load: Callable[[str, bytes], LoadedDocument]) -> None:
    # 0x81 is undefined in cp1252, so only latin-1 can decode this.
    doc = load("odd.txt", b"caf\xe9 \x81 menu")
    assert doc.text == "café \x81 menu"
    assert doc.warnings == ("not valid UTF-8; decoded as latin-1",)


def test_text_with_nul_bytes_is_binary(load: Callable[[str, bytes], LoadedDocument]) -> None:
    with pytest.raises(LoaderError) as info:
        load("image.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    assert info.value.reason == "binary content, not text"
    assert not isinstance(info.value, EmptyDocumentError)


def test_text_of_control_characters_is_binary(
    load: Callable[[str, bytes], LoadedDocument],
) -> None:
    with pytest.raises(LoaderError, match="binary content"):
        load("blob.txt", bytes(range(1, 32)) * 20 + b"abc")


def test_random_bytes_txt(load: Callable[[str, bytes], LoadedDocument]) -> None:
    with pytest.raises(LoaderError, match="binary content"):
        load("random.txt", _random_bytes())


# --- empty files in every format ---------------------------------------------


@pytest.mark.parametrize(
    "suffix", sorted({".txt", ".md", ".markdown", ".html", ".htm", ".pdf", ".docx"})
)
def test_zero_bytes_is_empty(load: Callable[[str, bytes], LoadedDocument], suffix: str) -> None:
    with pytest.raises(EmptyDocumentError) as info:
        load(f"empty{suffix}", b"")
    assert info.value.reason == "empty file"


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("blank.txt", b"  \n\t\r\n  "),
        ("blank.md", b"\n\n   \n"),
        ("front-matter-only.md", b"---\ntitle: Nothing here\n---\n\n"),
        (
            "blank.html",
            b"<html><head><title>T</title><script>x()</script></head><body> </body></html>",
        ),
        ("bom-only.txt", codecs.BOM_UTF8),
    ],
)
def test_whitespace_only_is_empty(
    load: Callable[[str, bytes], LoadedDocument], name: str, data: bytes
) -> None:
    with pytest.raises(EmptyDocumentError) as info:
        load(name, data)
    assert info.value.reason == "no text"


def test_empty_docx_body_is_empty(load: Callable[[str, bytes], LoadedDocument]) -> None:
    with pytest.raises(EmptyDocumentError):
        load("blank.docx", make_docx(["", "   "], title="Only a title"))


# --- Markdown -----------------------------------------------------------------


def test_markdown_front_matter_title_and_strip(
    load: Callable[[str, bytes], LoadedDocument],
) -> None:
    source = (
        "---\n"
        "title: 'Tomatoes: the ''easy'' way'  \n"
        "tags: [garden]\n"
        "---\n"
        "\n"
        "# Growing tomatoes\n\nWater **twice** a week.\n"
    )
    doc = load("tomatoes.md", source.encode())
    assert doc.title == "Tomatoes: the 'easy' way"
    assert doc.text == "# Growing tomatoes\n\nWater **twice** a week.\n"


def test_markdown_heading_title_ignores_code_fences(
    load: Callable[[str, bytes], LoadedDocument],
) -> None:
    source = "Intro line.\n\n```sh\n# not a heading\n```\n\n## Sub\n\n# The *Real* `Title` #\n"
    doc = load("guide.markdown", source.encode())
    assert doc.title == "The *Real* Title"
    assert "# not a heading" in doc.text  # the source is kept as the text


def test_markdown_setext_heading(load: Callable[[str, bytes], LoadedDocument]) -> None:
    doc = load("setext.md", b"Compost Bays\n============\n\nTurn every two weeks.\n")
    assert doc.title == "Compost Bays"


def test_markdown_without_heading_uses_stem(
    load: Callable[[str, bytes], LoadedDocument],
) -> None:
    doc = load("shopping-list.md", b"- eggs\n- flour\n")
    assert doc.title == "shopping-list"


def test_markdown_leading_rule_is_not_front_matter(
    load: Callable[[str, bytes], LoadedDocument],
) -> None:
    source = "---\nJust a rule, then prose.\n---\nMore prose.\n"
    doc = load("rule.md", source.encode())
    assert doc.text == source


def test_markdown_shares_text_decoding(load: Callable[[str, bytes], LoadedDocument]) -> None:
    doc = load("legacy.md", "# Café\r\n\r\nVoilà".encode("cp1252"))
    assert doc.title == "Café"
    assert doc.text == "# Café\n\nVoilà"
    assert doc.warnings == ("not valid UTF-8; decoded as cp1252",)


# --- HTML ---------------------------------------------------------------------


def test_html_drops_scripts_styles_and_keeps_blocks(
    load: Callable[[str, bytes], LoadedDocument],
) -> None:
    page = make_html(
        ["Water deeply twice a week.", "Mulch with 5 cm of straw."],
        title="Tomato care",
        heading="Tomatoes",
        head_extra="<style>p { color: red }</style><script>var secret = 1;</script>",
        body_extra=(
            "<script>track('visit')</script><noscript>Enable JavaScript</noscript>"
            "<template><p>hidden template</p></template>"
            "<svg><title>icon</title><text>svg label</text></svg><!-- a comment -->"
            "<table><tr><th>Pest</th><th>Fix</th></tr><tr><td>Slugs</td><td>Beer traps</td></tr>"
            "</table><ul><li>one</li><li>two</li></ul><p>Line one<br>line two</p>"
        ),
    )
    doc = load("tomato.html", page.encode())
    assert doc.title == "Tomato care"
    for hidden in (
        "color",
        "secret",
        "track",
        "Enable JavaScript",
        "hidden",
        "icon",
        "svg",
        "comment",
    ):
        assert hidden not in doc.text
    assert doc.text == (
        "Tomatoes\n\nWater deeply twice a week.\n\nMulch with 5 cm of straw.\n\n"
        "Pest | Fix\nSlugs | Beer traps\n\none\ntwo\n\nLine one\nline two"
    )


def test_html_inline_whitespace(load: Callable[[str, bytes], LoadedDocument]) -> None:
    doc = load("inline.htm", b"<p>Plant   <b>deeply</b>,\n  <i>up to</i>&nbsp;the\tleaves.</p>")
    assert doc.text == "Plant deeply, up to the leaves."
    assert doc.title == "inline"


def test_html_title_falls_back_to_h1(load: Callable[[str, bytes], LoadedDocument]) -> None:
    page = make_html(["Body."], title="  ", heading="Raised   beds")
    assert load("beds.html", page.encode()).title == "Raised beds"


@pytest.mark.parametrize(
    "meta",
    [
        '<meta charset="windows-1252">',
        '<meta charset="ISO-8859-1">',  # browsers read this as windows-1252 too
        '<meta http-equiv="Content-Type" content="text/html; charset=windows-1252">',
    ],
)
def test_html_meta_charset(load: Callable[[str, bytes], LoadedDocument], meta: str) -> None:
    page = f"<html><head>{meta}<title>Caf\u00e9</title></head><body><p>\u201cQuoted\u201d</p>"
    doc = load("legacy.html", page.encode("cp1252"))
    assert doc.title == "Café"
    assert doc.text == "“Quoted”"
    assert doc.warnings == ()


def test_html_wrong_meta_charset_warns(load: Callable[[str, bytes], LoadedDocument]) -> None:
    page = make_html(["Grüße – café"], charset="utf-8").encode("cp1252")
    doc = load("liar.html", page)
    assert "Grüße – café" in doc.text
    assert doc.warnings == ("not valid utf-8 as declared; decoded as cp1252",)


# --- PDF ----------------------------------------------------------------------

PDF_PAGES = [
    "Astrophotography primer\nUse the 500 rule for exposure times.",
    "Take 20 dark frames and 20 flat frames.",
    "Stack at least 60 light frames in Siril.",
]


def test_pdf_pages_and_spans(load: Callable[[str, bytes], LoadedDocument]) -> None:
    doc = load("primer.pdf", make_pdf(PDF_PAGES, title="Night Sky Primer"))
    assert doc.title == "Night Sky Primer"
    assert doc.text == "\n\n".join(PDF_PAGES)  # word spacing survives extraction
    assert [span.page for span in doc.pages] == [1, 2, 3]
    for span, expected in zip(doc.pages, PDF_PAGES, strict=True):
        assert doc.text[span.start : span.end] == expected
    assert doc.page_at(doc.text.index("dark frames")) == 2
    assert doc.page_at(doc.text.index("Siril")) == 3
    assert doc.warnings == ()


def test_pdf_title_from_first_line(load: Callable[[str, bytes], LoadedDocument]) -> None:
    doc = load("untitled.pdf", make_pdf(["\n  Maintenance Checklist\nMonthly tasks."]))
    assert doc.title == "Maintenance Checklist"


def test_pdf_blank_page_keeps_numbering(load: Callable[[str, bytes], LoadedDocument]) -> None:
    doc = load("gap.pdf", make_pdf(["First page.", "", "Third page."]))
    assert [(s.page, s.end - s.start) for s in doc.pages] == [(1, 11), (2, 0), (3, 11)]
    assert doc.page_at(doc.text.index("Third")) == 3


def test_pdf_without_text_layer(load: Callable[[str, bytes], LoadedDocument]) -> None:
    with pytest.raises(EmptyDocumentError) as info:
        load("scan.pdf", make_pdf(["", ""]))
    assert info.value.reason == "no extractable text (scanned PDF?)"


@pytest.mark.parametrize("keep", [0.5, 0.9])
def test_truncated_pdf(load: Callable[[str, bytes], LoadedDocument], keep: float) -> None:
    data = make_pdf(PDF_PAGES)
    with pytest.raises(LoaderError) as info:
        load("cut.pdf", data[: int(len(data) * keep)])
    assert info.value.reason.startswith("truncated or damaged PDF: ")
    assert len(info.value.reason) <= 200


def test_random_bytes_pdf(load: Callable[[str, bytes], LoadedDocument]) -> None:
    with pytest.raises(LoaderError) as info:
        load("random.pdf", _random_bytes())
    assert info.value.reason == "not a PDF file (no %PDF- header)"
    with pytest.raises(LoaderError, match="damaged PDF"):
        load("header-then-junk.pdf", b"%PDF-1.4\n" + _random_bytes())


def test_pdf_with_broken_xref_is_repaired_with_warning(
    load: Callable[[str, bytes], LoadedDocument],
) -> None:
    data = make_pdf(PDF_PAGES)
    broken = data.replace(b"startxref\n", b"startxref\n9")  # points past the end
    doc = load("repaired.pdf", broken)
    assert doc.text == "\n\n".join(PDF_PAGES)
    assert doc.warnings and all(w.startswith("pypdf: ") for w in doc.warnings)


def _encrypted_pdf(user_password: str) -> bytes:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(make_pdf(PDF_PAGES))))
    # RC4 needs no optional crypto dependency, unlike AES.
    writer.encrypt(user_password=user_password, owner_password="owner", algorithm="RC4-128")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_encrypted_pdf_with_password(load: Callable[[str, bytes], LoadedDocument]) -> None:
    with pytest.raises(LoaderError) as info:
        load("locked.pdf", _encrypted_pdf("secret"))
    assert info.value.reason == "encrypted PDF"


def test_encrypted_pdf_with_empty_password_opens(
    load: Callable[[str, bytes], LoadedDocument],
) -> None:
    doc = load("restricted.pdf", _encrypted_pdf(""))
    assert doc.text == "\n\n".join(PDF_PAGES)
    assert len(doc.pages) == 3


# --- DOCX ---------------------------------------------------------------------


def test_docx_paragraphs_and_tables_in_order(
    load: Callable[[str, bytes], LoadedDocument],
) -> None:
    data = make_docx(
        [
            ("Heading1", "Pest control"),
            "Slugs love damp beds.",
            [["Pest", "Treatment", ""], ["Slugs", "Beer traps", ""], ["", "", ""]],
            "",
            "After the table.\nSecond line.",
        ],
        title="Garden pests",
    )
    doc = load("pests.docx", data)
    assert doc.title == "Garden pests"
    assert doc.text == (
        "Pest control\n\nSlugs love damp beds.\n\nPest | Treatment\nSlugs | Beer traps\n\n"
        "After the table.\nSecond line."
    )
    assert doc.pages == ()


def test_docx_title_from_heading(load: Callable[[str, bytes], LoadedDocument]) -> None:
    doc = load("ups.docx", make_docx(["Intro paragraph.", ("Heading2", "Battery"), "Text."]))
    assert doc.title == "Battery"


def test_docx_title_from_first_line(load: Callable[[str, bytes], LoadedDocument]) -> None:
    doc = load("memo.docx", make_docx(["", "Memo to self", "Buy seeds."]))
    assert doc.title == "Memo to self"


def test_zero_byte_docx_is_a_loader_error(load: Callable[[str, bytes], LoadedDocument]) -> None:
    with pytest.raises(LoaderError):
        load("zero.docx", b"")


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (_random_bytes(), "not a valid DOCX (zip) file"),
        (make_docx(["Some text"])[:400], "not a valid DOCX (zip) file"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + _random_bytes(), "legacy .doc"),
    ],
    ids=["random", "truncated", "ole"],
)
def test_invalid_docx(
    load: Callable[[str, bytes], LoadedDocument], data: bytes, reason: str
) -> None:
    with pytest.raises(LoaderError) as info:
        load("broken.docx", data)
    assert reason in info.value.reason


def test_zip_that_is_not_docx(load: Callable[[str, bytes], LoadedDocument]) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("notes.txt", "hello")
    with pytest.raises(LoaderError) as info:
        load("archive.docx", buffer.getvalue())
    assert info.value.reason.startswith("not a valid DOCX document")


# --- dispatch -----------------------------------------------------------------


@pytest.mark.parametrize("name", ["photo.jpg", "Makefile", "archive.tar.gz"])
def test_unsupported_suffix(load: Callable[[str, bytes], LoadedDocument], name: str) -> None:
    with pytest.raises(LoaderError) as info:
        load(name, b"data")
    assert info.value.reason.startswith("unsupported file type: ")


def test_suffix_is_case_insensitive(load: Callable[[str, bytes], LoadedDocument]) -> None:
    assert load("SHOUT.PDF", make_pdf(["Loud."])).text == "Loud."
    assert load("README.TXT", b"Quiet.").text == "Quiet."


@pytest.fixture
def exploding_loader() -> Iterator[None]:
    @loaders_base.register(".boom")
    def explode(data: bytes, path: Path) -> LoadedDocument:
        raise RuntimeError("parser bug " + "x" * 500)

    yield
    loaders_base._LOADERS.pop(".boom")


@pytest.mark.usefixtures("exploding_loader")
def test_unexpected_errors_become_loader_errors(
    load: Callable[[str, bytes], LoadedDocument],
) -> None:
    with pytest.raises(LoaderError) as info:
        load("file.boom", b"data")
    assert info.value.reason.startswith("RuntimeError: parser bug")
    assert len(info.value.reason) <= 200
    assert isinstance(info.value.__cause__, RuntimeError)


def test_import_is_lazy() -> None:
    code = (
        "import sys, ragkeep.ingest.loaders\n"
        "heavy = [m for m in ('pypdf', 'docx', 'bs4', 'lxml') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == ""


# --- sample documents ---------------------------------------------------------


def test_sample_documents_load_cleanly() -> None:
    files = sorted(p for p in SAMPLES.rglob("*") if p.is_file())
    assert {p.suffix for p in files} >= {".md", ".txt", ".html", ".pdf", ".docx"}
    for path in files:
        doc = load_document(path.read_bytes(), path)
        assert doc.warnings == (), path
        assert len(doc.text.split()) >= 200, path
        assert doc.title != path.stem, path


def test_generated_samples_are_up_to_date() -> None:
    spec = importlib.util.spec_from_file_location(
        "make_sample_docs", ROOT / "scripts" / "make_sample_docs.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    built: dict[str, bytes] = module.build()
    for relative, content in built.items():
        assert (SAMPLES / relative).read_bytes() == content, (
            f"run scripts/make_sample_docs.py ({relative})"
        )
    astro = load_document(built["sky/astrophotography-primer.pdf"], Path("a.pdf"))
    assert len(astro.pages) >= 3
