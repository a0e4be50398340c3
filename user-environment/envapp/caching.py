"""Streamlit-cached wrappers of the expensive computations.

They live in one module (not in the pages) so that every page shares one cache: the
HEALPix page's default spectrum is the CMB page's default, computed once per server.
"""

from __future__ import annotations

import time

import pandas as pd
import streamlit as st

from envapp import cmb

DEFAULT_LMAX = 2000


@st.cache_data(max_entries=32, show_spinner=False)
def cached_spectra(
    params: cmb.CosmoParams, lmax: int = DEFAULT_LMAX, lensed: bool = True
) -> tuple[pd.DataFrame, float]:
    """The spectra and the seconds CAMB took; cached across reruns and sessions."""
    started = time.perf_counter()
    frame = cmb.compute_spectra(params, lmax, lensed=lensed)
    return frame, time.perf_counter() - started
