"""Observation operators of flux calibrations (period means at the observed steps, soil
water at a sensor depth): re-exported from :mod:`assimilation.operators`, the one module
of observation operators shared by calibration and ensemble filters."""
from assimilation.operators import (PeriodMean, period_mean, period_mean_observations,
                                    soil_water_at_depth)

__all__ = ["PeriodMean", "period_mean", "period_mean_observations", "soil_water_at_depth"]
