"""File previews: kinds, bounded reads, FITS headers and images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from envapp import previews


@pytest.mark.parametrize(
    ("name", "content", "kind"),
    [
        ("t.csv", b"a,b\n", "csv"),
        ("t.TSV", b"a\tb\n", "csv"),
        ("m.fits", b"", "fits"),
        ("m.fits.gz", b"", "fits"),
        ("p.PNG", b"", "image"),
        ("p.jpeg", b"", "image"),
        ("notes", b"plain words\n", "text"),
        ("script.py", "print('é')\n".encode(), "text"),
        ("blob.bin", b"\x00\x01\x02", "binary"),
        ("latin.dat", b"\xff\xfe\xfa" * 100, "binary"),
    ],
)
def test_preview_kind(tmp_path: Path, name: str, content: bytes, kind: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    assert previews.preview_kind(path) == kind


def test_multibyte_character_cut_at_the_sniff_boundary_is_still_text(tmp_path: Path) -> None:
    path = tmp_path / "long.txt"
    path.write_bytes(b"a" * 4095 + "é".encode())
    assert previews.preview_kind(path) == "text"


def test_text_head_is_bounded(tmp_path: Path) -> None:
    path = tmp_path / "big.log"
    path.write_text("x" * 10_000)
    text, truncated = previews.read_text_head(path, max_bytes=1000)
    assert text == "x" * 1000 and truncated
    short, truncated = previews.read_text_head(path, max_bytes=20_000)
    assert len(short) == 10_000 and not truncated


def test_csv_head_is_bounded(tmp_path: Path) -> None:
    path = tmp_path / "rows.csv"
    path.write_text("ell,TT\n" + "".join(f"{i},{i * 2}\n" for i in range(5000)))
    frame = previews.read_csv_head(path, max_rows=100)
    assert list(frame.columns) == ["ell", "TT"] and len(frame) == 100


@pytest.fixture
def fits_file(tmp_path: Path) -> Path:
    from astropy.io import fits

    image = np.arange(3 * 40 * 50, dtype=np.float32).reshape(3, 40, 50)
    primary = fits.PrimaryHDU(image)
    primary.header["OBJECT"] = ("Coma cluster", "what was observed")
    primary.header["TELESCOP"] = "SPT"
    table = fits.BinTableHDU.from_columns(
        [fits.Column(name="ell", format="J", array=np.arange(10))], name="SPECTRUM"
    )
    path = tmp_path / "obs.fits"
    fits.HDUList([primary, table]).writeto(path)
    return path


def test_fits_headers_and_shapes(fits_file: Path) -> None:
    hdus = previews.fits_hdus(fits_file)
    assert [h.kind for h in hdus] == ["PrimaryHDU", "BinTableHDU"]
    primary, table = hdus
    assert primary.shape == (3, 40, 50) and primary.is_image
    assert "OBJECT  = 'Coma cluster'" in primary.header
    assert "TELESCOP= 'SPT     '" in primary.header
    assert table.name == "SPECTRUM" and not table.is_image


def test_fits_image_takes_the_first_plane_and_decimates(fits_file: Path) -> None:
    image = previews.fits_image(fits_file, 0, max_side=25)
    assert image.shape == (20, 25)
    assert image[0, 1] == 2.0  # every second pixel of plane 0
    with pytest.raises(ValueError):
        previews.fits_image(fits_file, 1)
