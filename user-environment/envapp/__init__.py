"""The CMBCluster research environment: pure helpers behind the Streamlit pages.

Modules here import only the standard library, numpy and pandas at import time;
CAMB, healpy and astropy are imported inside the functions that need them so the
landing page and the health check stay fast.
"""
