"""HEALPix maps: simulate one from a power spectrum, or show one from a FITS file."""

import numpy as np
import pandas as pd
import streamlit as st

from envapp import cmb, healpix, paths, settings
from envapp.caching import DEFAULT_LMAX, cached_spectra

PLANCK = "Planck 2018 best fit (CAMB)"
FITS_SUFFIXES = (".fits", ".fit", ".fits.gz")

workspace = settings.workspace_dir()


def planck_tt() -> pd.DataFrame:
    # Passed exactly as the CMB page passes them: the cache key is the call's arguments.
    frame, _seconds = cached_spectra(cmb.CosmoParams(), DEFAULT_LMAX, True)
    return frame[["ell", "TT"]]


def csv_tt(rel: str) -> pd.DataFrame:
    frame = pd.read_csv(paths.resolve_within(workspace, rel))
    missing = {"ell", "TT"} - set(frame.columns)
    if missing:
        raise ValueError(f"{rel} has no column(s) {', '.join(sorted(missing))}")
    return frame[["ell", "TT"]]


@st.cache_data(max_entries=4, show_spinner=False)
def cached_read_map(rel: str, field: int, modified: float) -> np.ndarray:
    # `modified` is part of the cache key so a rewritten file is read again.
    del modified
    return healpix.read_map(paths.resolve_within(workspace, rel), field=field)


st.title("HEALPix maps")
simulate_tab, file_tab = st.tabs(["Simulate from a spectrum", "Show a FITS map"])

with simulate_tab:
    spectrum_files = [
        rel for rel in paths.find_files(workspace, (".csv",)) if rel.startswith("spectra/")
    ]
    with st.form("simulate", border=False):
        source = st.selectbox(
            "TT spectrum (D_ℓ in μK²)", [PLANCK, *spectrum_files],
            help="CSV files with columns ell and TT under workspace/spectra/ are listed "
                 "here; the CMB page saves them.",
        )
        nside = st.select_slider("nside", options=healpix.NSIDE_CHOICES, value=64)
        seed = st.number_input("Random seed", min_value=0, max_value=2**31 - 1, value=42)
        simulated = st.form_submit_button("Simulate", type="primary")

    if simulated:
        try:
            with st.spinner("Synthesizing the map…"):
                spectrum = planck_tt() if source == PLANCK else csv_tt(source)
                sky = healpix.simulate_map(spectrum["ell"].to_numpy(),
                                           spectrum["TT"].to_numpy(), nside, int(seed))
            st.session_state["healpix:sim"] = (sky, source, nside, int(seed))
        except (ValueError, OSError, paths.UnsafePathError) as exc:
            st.error(f"Could not simulate: {exc}")

    if "healpix:sim" in st.session_state:
        sky, sim_source, sim_nside, sim_seed = st.session_state["healpix:sim"]
        title = f"{sim_source} · nside {sim_nside} · seed {sim_seed}"
        st.pyplot(healpix.mollview_figure(sky, title=title))
        st.caption(f"{sky.size} pixels · rms {np.std(sky):.1f} μK")
        name = st.text_input("Save as (in workspace/maps/)",
                             value=f"sim_nside{sim_nside}_seed{sim_seed}.fits")
        if st.button("Save map to workspace"):
            try:
                if not name.endswith(FITS_SUFFIXES):
                    name = f"{name}.fits"
                target = paths.resolve_within(workspace, paths.join_rel("maps", name))
                target.parent.mkdir(parents=True, exist_ok=True)
                healpix.write_map(target, sky)
                st.success(f"Saved maps/{name}.")
            except paths.UnsafePathError as exc:
                st.error(f"Not a valid file name: {exc}")
            except OSError as exc:  # astropy refuses to overwrite: say so plainly
                st.error(f"Could not save maps/{name}: {exc}")

with file_tab:
    fits_files = paths.find_files(workspace, FITS_SUFFIXES)
    if not fits_files:
        st.info("No FITS files in your workspace yet. Upload one on the Workspace page, "
                "or simulate a map and save it.")
    else:
        rel = st.selectbox("Map file", fits_files)
        field = st.number_input("Field (0 = temperature / first column)", 0, 2, 0)
        try:
            modified = paths.resolve_within(workspace, rel).stat().st_mtime
            with st.spinner("Reading the map…"):
                sky = cached_read_map(rel, int(field), modified)
            st.pyplot(healpix.mollview_figure(sky, title=rel))
        except Exception as exc:  # not every FITS file is a HEALPix map
            st.error(f"{rel} is not a readable HEALPix map: {exc}")
