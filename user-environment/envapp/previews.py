"""What a file looks like in the browser: its kind and bounded previews of its content.

Previews read at most a bounded amount of a file, so a 50 GB simulation output in the
workspace cannot stall the page or exhaust the pod's memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

TEXT_PREVIEW_BYTES = 64 * 1024
CSV_PREVIEW_ROWS = 1000
IMAGE_PREVIEW_MAX_BYTES = 20 * 1024 * 1024
FITS_IMAGE_MAX_SIDE = 1024

_CSV_SUFFIXES = {".csv": ",", ".tsv": "\t"}
_FITS_SUFFIXES = (".fits", ".fit", ".fts", ".fits.gz", ".fit.gz", ".fts.gz")
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".webp")


def preview_kind(path: Path) -> str:
    """One of "csv", "fits", "image", "text" or "binary", from the name and, for
    unknown suffixes, from whether the first bytes look like text."""
    name = path.name.lower()
    if path.suffix.lower() in _CSV_SUFFIXES:
        return "csv"
    if name.endswith(_FITS_SUFFIXES):
        return "fits"
    if name.endswith(_IMAGE_SUFFIXES):
        return "image"
    with path.open("rb") as handle:
        head = handle.read(4096)
    if b"\x00" in head:
        return "binary"
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte character cut at the 4 KB boundary is still text.
        if exc.start < len(head) - 3:
            return "binary"
    return "text"


def read_text_head(path: Path, max_bytes: int = TEXT_PREVIEW_BYTES) -> tuple[str, bool]:
    """The first `max_bytes` of a file as text, and whether the file is longer."""
    with path.open("rb") as handle:
        data = handle.read(max_bytes + 1)
    truncated = len(data) > max_bytes
    return data[:max_bytes].decode("utf-8", errors="replace"), truncated


def read_csv_head(path: Path, max_rows: int = CSV_PREVIEW_ROWS) -> pd.DataFrame:
    """The first `max_rows` rows of a CSV or TSV file."""
    sep = _CSV_SUFFIXES.get(path.suffix.lower(), ",")
    return pd.read_csv(path, sep=sep, nrows=max_rows)


@dataclass(frozen=True)
class FitsHdu:
    """What the FITS preview shows of one header-data unit."""

    index: int
    name: str
    kind: str
    shape: tuple[int, ...] | None
    header: str

    @property
    def is_image(self) -> bool:
        """Whether the HDU holds pixel data that can be drawn (2-D or more)."""
        return self.kind in ("PrimaryHDU", "ImageHDU", "CompImageHDU") and bool(
            self.shape and len(self.shape) >= 2
        )


def fits_hdus(path: Path) -> list[FitsHdu]:
    """Headers and shapes of every HDU, without reading the data sections."""
    from astropy.io import fits  # heavy: only when a FITS file is previewed

    hdus: list[FitsHdu] = []
    with fits.open(path, memmap=True, lazy_load_hdus=True) as hdul:
        for index, hdu in enumerate(hdul):
            header = hdu.header
            naxis = int(header.get("NAXIS", 0))
            # FITS lists axes fastest-first; numpy (and people) read them the other way.
            shape = tuple(int(header.get(f"NAXIS{n}", 0)) for n in range(naxis, 0, -1))
            hdus.append(
                FitsHdu(
                    index=index,
                    name=hdu.name or f"HDU {index}",
                    kind=type(hdu).__name__,
                    shape=shape or None,
                    header=header.tostring(sep="\n", endcard=False, padding=False),
                )
            )
    return hdus


def fits_image(path: Path, index: int, max_side: int = FITS_IMAGE_MAX_SIDE) -> np.ndarray:
    """A 2-D float image of HDU `index`, its first plane for cubes, decimated so that
    neither side exceeds `max_side` pixels."""
    from astropy.io import fits

    with fits.open(path, memmap=True) as hdul:
        data = hdul[index].data
        if data is None or data.ndim < 2:
            raise ValueError(f"HDU {index} holds no image")
        while data.ndim > 2:
            data = data[0]
        step = max(1, -(-max(data.shape) // max_side))
        # Copy out of the memory map before the file closes.
        return np.array(data[::step, ::step], dtype=float)
