"""The attachment policy: declared type, magic bytes, size, count, the reason per refused file,
and safe stored names."""

from __future__ import annotations

import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from procurement.deviations.fields import MAX_ATTACHMENT_BYTES, MAX_ATTACHMENTS, MAX_FILE_NAME
from procurement.deviations.model import (
    OfferedFile,
    ReceivedFile,
    declared_kind,
    safe_file_name,
    screen_offered,
    screen_received,
    sniff,
)


def picture(fmt: str) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (4, 4), (200, 30, 30)).save(out, format=fmt)
    return out.getvalue()


PNG = picture("PNG")
JPEG = picture("JPEG")
PDF = b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<<>>\n%%EOF\n"
# An ISO-BMFF ftyp box as an iPhone writes it: major brand heic, compatible mif1 and heic.
HEIC = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 64
AVIF = b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1miaf" + b"\x00" * 64
EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00" + b"\x00" * 64


# -- magic bytes ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "kind"),
    [(PNG, "png"), (JPEG, "jpeg"), (PDF, "pdf"), (HEIC, "heic"), (AVIF, None), (EXE, None), (b"", None)],
)
def test_sniff_reads_the_magic_bytes(data: bytes, kind: str | None) -> None:
    assert sniff(data) == kind


def test_a_generic_heif_brand_counts_as_heic_and_a_short_box_does_not_crash() -> None:
    assert sniff(b"\x00\x00\x00\x10ftypmif1\x00\x00\x00\x00") == "heic"
    assert sniff(b"\x00\x00\x00\x00ftyp") is None
    assert sniff(b"\xff\xff\xff\xffftypisom\x00\x00\x00\x00mp42") is None  # a video is not a photo


@pytest.mark.parametrize(
    ("name", "declared", "kind"),
    [
        ("a.png", "image/png", "png"),
        ("a", "image/jpeg; charset=binary", "jpeg"),
        ("IMG_0001.HEIC", "image/heif", "heic"),
        ("a.pdf", "pdf", "pdf"),  # Teams' fileType
        ("bilde.jpg", "application/octet-stream", "jpeg"),  # says nothing: the extension decides
        ("bilde.exe", "application/octet-stream", None),
        ("setup.exe", "application/x-msdownload", None),
        ("a.docx", "docx", None),
        ("a.png", None, "png"),
        ("a.gif", "image/gif", None),
    ],
)
def test_declared_kind(name: str, declared: str | None, kind: str | None) -> None:
    assert declared_kind(name, declared) == kind


# -- before the download -------------------------------------------------------------------


def test_before_download_the_declared_type_size_and_a_full_report_are_refused() -> None:
    offered = [
        OfferedFile("foto.png", "image/png", 2_000),
        OfferedFile("setup.exe", "application/x-msdownload", 50_000),
        OfferedFile("video.pdf", "application/pdf", 12 * 1024 * 1024),
        OfferedFile("kvittering.pdf", "pdf", None),
    ]
    screening = screen_offered(offered, attached=3)
    assert [f.name for f in screening.to_download] == ["foto.png", "kvittering.pdf"]
    assert [(r.name, r.reason) for r in screening.refused] == [("setup.exe", "type"), ("video.pdf", "size")]
    assert "JPEG, PNG, HEIC, PDF" in screening.refused[0].messages["nb"]
    assert "10 MB" in screening.refused[1].messages["nb"]
    full = screen_offered(offered[:1], attached=MAX_ATTACHMENTS)
    assert [r.reason for r in full.refused] == ["count"] and not full.to_download


# -- after the download ---------------------------------------------------------------------


def test_a_png_and_a_pdf_are_kept_and_a_12_mb_file_and_an_exe_refused_with_the_rest_kept() -> None:
    received = [
        ReceivedFile("skade.png", "image/png", PNG),
        ReceivedFile("stor.jpg", "image/jpeg", JPEG + b"\x00" * (12 * 1024 * 1024)),
        ReceivedFile("faktura.pdf", "application/pdf", PDF),
        ReceivedFile("virus.exe", "application/octet-stream", EXE),
    ]
    screening = screen_received(received, existing_names=[])
    assert [(a.stored_name, a.kind, a.content_type) for a in screening.accepted] == [
        ("skade.png", "png", "image/png"),
        ("faktura.pdf", "pdf", "application/pdf"),
    ]
    assert screening.accepted[0].size == len(PNG)
    assert [(r.name, r.reason) for r in screening.refused] == [("stor.jpg", "size"), ("virus.exe", "type")]
    assert all(r.messages["nb"] and r.messages["en"] for r in screening.refused)


def test_exactly_ten_mb_is_allowed() -> None:
    data = PDF + b"\x00" * (MAX_ATTACHMENT_BYTES - len(PDF))
    assert screen_received([ReceivedFile("a.pdf", "pdf", data)], []).accepted
    assert screen_received([ReceivedFile("a.pdf", "pdf", data + b"\x00")], []).refused[0].reason == "size"


def test_the_bytes_decide_an_image_type_but_a_pdf_must_be_a_pdf() -> None:
    # Teams labels inline images loosely: a JPEG called image/png is stored as the JPEG it is.
    relabelled = screen_received([ReceivedFile("foto.png", "image/png", JPEG)], [])
    assert [(a.stored_name, a.kind) for a in relabelled.accepted] == [("foto.jpg", "jpeg")]
    mismatch = screen_received(
        [ReceivedFile("kontrakt.pdf", "application/pdf", PNG), ReceivedFile("bilde.jpg", "image/jpeg", PDF)], []
    )
    assert [r.reason for r in mismatch.refused] == ["mismatch", "mismatch"]
    assert not mismatch.accepted


@pytest.mark.parametrize("data", [EXE, AVIF, b"<html>not an image</html>", b"GIF89a\x01\x00"])
def test_content_that_is_not_an_allowed_kind_is_refused_whatever_it_is_called(data: bytes) -> None:
    screening = screen_received([ReceivedFile("foto.jpg", "image/jpeg", data)], [])
    assert [r.reason for r in screening.refused] == ["content"]
    assert "innholdet" in screening.refused[0].messages["nb"]


def test_an_empty_file_is_refused() -> None:
    assert screen_received([ReceivedFile("tom.png", "image/png", b"")], []).refused[0].reason == "empty"


def test_a_failed_download_is_explained_with_what_to_do_and_the_rest_kept() -> None:
    screening = screen_received(
        [ReceivedFile("IMG_4411.jpg", "image/jpeg", None, download_status=403), ReceivedFile("b.png", "png", PNG)], []
    )
    assert [a.stored_name for a in screening.accepted] == ["b.png"]
    [failed] = screening.refused
    assert failed.reason == "download"
    assert "som fil" in failed.messages["nb"] and "Resten av meldingen" in failed.messages["nb"]
    assert "as a file" in failed.messages["en"]


def test_the_count_is_per_report_and_a_failed_file_frees_its_place() -> None:
    existing = [f"{i}.jpg" for i in range(MAX_ATTACHMENTS - 2)]
    received = [
        ReceivedFile("a.png", "image/png", None, download_status=403),
        ReceivedFile("b.png", "image/png", PNG),
        ReceivedFile("c.png", "image/png", PNG),
        ReceivedFile("d.png", "image/png", PNG),
    ]
    screening = screen_received(received, existing)
    assert [a.stored_name for a in screening.accepted] == ["b.png", "c.png"]
    assert [(r.name, r.reason) for r in screening.refused] == [("a.png", "download"), ("d.png", "count")]
    assert "høyst 10 vedlegg" in screening.refused[1].messages["nb"]


def test_names_are_unique_in_the_report_case_insensitively() -> None:
    received = [ReceivedFile("Foto.png", "image/png", PNG), ReceivedFile("foto.png", "image/png", PNG)]
    screening = screen_received(received, existing_names=["FOTO.png"])
    assert [a.stored_name for a in screening.accepted] == ["Foto (2).png", "foto (3).png"]


# -- safe names ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "kind", "stored"),
    [
        ("Skade på bil – Årnes.jpg", "jpeg", "Skade på bil – Årnes.jpg"),
        ("../../etc/passwd", "pdf", "passwd.pdf"),
        ("..\\..\\Windows\\system32\\cmd.exe", "png", "cmd.png"),
        ("C:\\Users\\ola\\Bilder\\IMG_1.HEIC", "heic", "IMG_1.heic"),
        ("faktura.pdf.exe", "pdf", "faktura.pdf.pdf"),
        ("..", "jpeg", "vedlegg.jpg"),
        ("", "jpeg", "vedlegg.jpg"),
        (".htaccess", "png", "htaccess.png"),
        ('a<b>c:d"e|f?g*h#i%j.png', "png", "a_b_c_d_e_f_g_h_i_j.png"),
        ("CON.jpg", "jpeg", "_CON.jpg"),
        ("nul", "pdf", "_nul.pdf"),
        ("rapport\x00\x1f.pdf", "pdf", "rapport.pdf"),
        ("  mellomrom   og\tfaner .pdf", "pdf", "mellomrom og faner.pdf"),
        ("Bla\u030as.png", "png", "Blås.png"),  # decomposed å from macOS made NFC
    ],
)
def test_safe_file_name(name: str, kind: str, stored: str) -> None:
    assert safe_file_name(name, kind) == stored


def test_a_long_name_is_cut_and_keeps_its_extension() -> None:
    stored = safe_file_name("ø" * 500 + ".jpg", "jpeg")
    assert len(stored) <= MAX_FILE_NAME and stored.endswith(".jpg") and stored.startswith("øøø")


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300), st.sampled_from(["jpeg", "png", "heic", "pdf"]))
def test_every_stored_name_is_a_plain_file_name(name: str, kind: str) -> None:
    stored = safe_file_name(name, kind, taken=["vedlegg.pdf"])
    assert 0 < len(stored) <= MAX_FILE_NAME
    assert not set(stored) & set('/\\:*?"<>|#%&{}~\x00')
    assert not stored.startswith((".", " ")) and stored not in (".", "..")
    assert stored.rsplit(".", 1)[1] in ("jpg", "png", "heic", "pdf")
    assert stored != "vedlegg.pdf"


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.text(max_size=40), st.sampled_from([None, "image/png", "pdf", "x/y"]), st.binary(max_size=64))
    )
)
def test_screening_never_raises_and_accounts_for_every_file(files: list[tuple[str, str | None, bytes]]) -> None:
    received = [ReceivedFile(n, t, PNG if i % 2 else d) for i, (n, t, d) in enumerate(files)]
    screening = screen_received(received, [])
    assert len(screening.accepted) + len(screening.refused) == len(received)
    assert len(screening.accepted) <= MAX_ATTACHMENTS
