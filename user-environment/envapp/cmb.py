"""CMB angular power spectra from cosmological parameters, computed with CAMB."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import pandas as pd

# CAMB's cost grows quickly with lmax (about 2 s at 2000, 6 s at 3000 with tensors
# on one laptop core); this bound keeps a small pod answering within seconds.
LMAX_MIN = 50
LMAX_MAX = 3000
SPECTRA = ("TT", "EE", "BB", "TE")  # CAMB's column order

# Inclusive bounds: outside them CAMB either fails deep inside Fortran or returns
# nonsense, so they are checked first with a message naming the parameter.
BOUNDS: dict[str, tuple[float, float]] = {
    "H0": (40.0, 100.0),
    "ombh2": (0.005, 0.1),
    "omch2": (0.001, 0.99),
    "ns": (0.8, 1.2),
    "ln10_10_As": (1.5, 4.5),
    "tau": (0.01, 0.8),
    "r": (0.0, 1.0),
}


@dataclass(frozen=True)
class CosmoParams:
    """Flat LCDM (+ tensors) parameters; the defaults are Planck 2018 best fit."""

    H0: float = 67.36
    ombh2: float = 0.02237
    omch2: float = 0.1200
    ns: float = 0.9649
    ln10_10_As: float = 3.044
    tau: float = 0.0544
    r: float = 0.0

    @property
    def As(self) -> float:  # noqa: N802 - the parameter's name in every paper
        """The scalar amplitude A_s from ln(10^10 A_s)."""
        return math.exp(self.ln10_10_As) / 1e10

    def validate(self) -> None:
        """Raise ValueError naming the first parameter outside its bounds."""
        for field in fields(self):
            value = getattr(self, field.name)
            low, high = BOUNDS[field.name]
            if not (isinstance(value, int | float) and math.isfinite(value)):
                raise ValueError(f"{field.name} must be a finite number")
            if not low <= value <= high:
                raise ValueError(f"{field.name}={value} is outside [{low}, {high}]")


def compute_spectra(params: CosmoParams, lmax: int = 2000, *, lensed: bool = True) -> pd.DataFrame:
    """D_ell = ell(ell+1)C_ell/2pi in muK^2 for TT, EE, BB, TE, for ell = 2..lmax.

    Returns a DataFrame with columns ell, TT, EE, BB, TE. With r > 0 the tensor
    contribution is included (it is what makes primordial BB).
    """
    params.validate()
    if not LMAX_MIN <= int(lmax) <= LMAX_MAX:
        raise ValueError(f"lmax={lmax} is outside [{LMAX_MIN}, {LMAX_MAX}]")
    lmax = int(lmax)

    import camb  # heavy (about a second): only when a spectrum is asked for

    want_tensors = params.r > 0
    camb_params = camb.set_params(
        H0=params.H0,
        ombh2=params.ombh2,
        omch2=params.omch2,
        ns=params.ns,
        As=params.As,
        tau=params.tau,
        r=params.r,
        WantTensors=want_tensors,
        lmax=lmax,
    )
    results = camb.get_results(camb_params)
    spectra = results.get_cmb_power_spectra(
        camb_params, CMB_unit="muK", raw_cl=False, lmax=lmax
    )
    key = "total" if lensed else "unlensed_total"
    dl = spectra[key]
    # CAMB's arrays start at ell=0, where D_ell is identically zero; ell=1 too.
    frame = pd.DataFrame(dl[2 : lmax + 1], columns=list(SPECTRA))
    frame.insert(0, "ell", range(2, lmax + 1))
    return frame


def spectra_csv(frame: pd.DataFrame) -> bytes:
    """The spectra as CSV (columns ell, TT, EE, BB, TE; D_ell in muK^2)."""
    return frame.to_csv(index=False, float_format="%.8e").encode()
