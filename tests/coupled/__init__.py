"""Tests of the coupled soil-moisture / photosynthesis model."""
