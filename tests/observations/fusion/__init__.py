"""Tests of the multi-sensor satellite fusion (Kalman smoother, MLE, baselines, xarray API)."""
