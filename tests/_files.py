"""The shipped data files the tests read (folder, file) for process_models.io.data_path."""
CHA = ("ch-cha_fluxnet2015-fullset-hh_fixture",
       "exampledata_FLUXNET-FULLSET-HH-CSV-30MIN_FLX_CH-Cha_FLUXNET2015_FULLSET_HH_2005-2020_beta-3.csv")
HES = ("fr-hes_2016_europe-fluxdata", "FR-Hes_europe-fluxdata_2016.txt.gz")
THA = ("de-tha_1996-1998", "Example_DETha98.txt")
THA_GF = ("de-tha_1996-1998", "test_gapfill.csv")
DAV = ("ch-dav_2013-2022_diive",
       "exampledata_PARQUET_CH-DAV_FP2022.5_2013-2022_ID20230206154316_30MIN.parquet")
VIE = ("be-vie_2014_pyrealm", "merged_BE-Vie_data.csv")
PFA = ("us-pfa_park-falls_vprm", "Park_Falls.RData")
MODIS = ("munich_2022_modis-era5_pyvprm", "modis")
ERA5 = ("munich_2022_modis-era5_pyvprm", "era5", "2022_7.nc.gz")
