"""Metadata of the shipped flux-tower sites, in one place for every study.

Coordinates from each data set's own metadata (FLUXNET/ICOS/AmeriFlux site pages as
copied into ``experiments/data/*/PROVENANCE.md``); PFT codes are the coupled model's
(:func:`process_models.coupled.pfts`), VPRM classes pyVPRM's numbering
(:data:`process_models.vprm.CLASS_NAMES`), soil textures Clapp & Hornberger (1978) classes.
``utc_offset`` is the local standard time of the tower files in hours.
"""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Site", "SITES", "get_site"]


@dataclass(frozen=True)
class Site:
    """One tower site.

    Attributes: ``name`` (FLUXNET id), ``latitude`` / ``longitude`` (degrees_north /
    degrees_east), ``pft`` (coupled-model PFT), ``soil_texture``, ``vprm_class`` (pyVPRM
    class id), ``igbp`` (IGBP class), ``folder`` / ``file`` (data set under the data root,
    read with :func:`process_models.io.data_path`), ``utc_offset`` (h), ``description``.
    """

    name: str
    latitude: float
    longitude: float
    pft: str
    soil_texture: str
    vprm_class: int
    igbp: str
    folder: str = ""
    file: str = ""
    utc_offset: float = 0.0
    description: str = ""

    @property
    def path(self) -> tuple[str, str]:
        """``(folder, file)`` for :func:`process_models.io.data_path`."""
        return self.folder, self.file


SITES: dict[str, Site] = {s.name: s for s in (
    Site("CH-Dav", 46.8153, 9.8559, "ENF", "loam", 1, "ENF", "ch-dav_2013-2022_diive",
         "exampledata_PARQUET_CH-DAV_FP2022.5_2013-2022_ID20230206154316_30MIN.parquet", 1.0,
         "Davos, subalpine Norway spruce forest, 1639 m a.s.l."),
    Site("FR-Hes", 48.6742, 7.0656, "DBF", "loam", 2, "DBF", "fr-hes_2016_europe-fluxdata",
         "FR-Hes_europe-fluxdata_2016.txt.gz", 1.0, "Hesse, beech forest"),
    Site("BE-Vie", 50.3049, 5.9981, "MF", "loam", 3, "MF", "be-vie_2014_pyrealm",
         "merged_BE-Vie_data.csv", 1.0, "Vielsalm, mixed beech/conifer forest"),
    Site("FR-Aqui", 44.467, -0.7269, "ENF", "loamy_sand", 1, "ENF", "ismn_fr-aqui_smosmania",
         "FR-Aqui_FR-Aqui_fraye_sm_0.050000_0.050000_ThetaProbe-ML2X_19500101_20210131.stm.gz",
         0.0, "Aquitaine (SMOSMANIA station), maritime pine on sandy soil"),
    Site("US-PFa", 45.9459, -90.2723, "MF", "loam", 3, "MF", "us-pfa_park-falls_vprm", "",
         -6.0, "Park Falls/WLEF tall tower, mixed northern forest"),
    Site("AT-Neu", 47.1167, 11.3175, "GRA", "loam", 7, "GRA", "fluxnet2015_month-subsets_bigleaf",
         "AT_Neu_Jul_2010.csv", 1.0, "Neustift, managed mountain grassland"),
    Site("FR-Pue", 43.7413, 3.5957, "EBF", "loam", 1, "EBF", "fluxnet2015_month-subsets_bigleaf",
         "FR_Pue_May_2012.csv", 1.0, "Puechabon, Mediterranean holm oak forest"),
    Site("DE-Tha", 50.9636, 13.5669, "ENF", "loam", 1, "ENF", "de-tha_1996-1998", "", 1.0,
         "Tharandt, old spruce forest, 380 m a.s.l."),
)}


def get_site(name: str) -> Site:
    """The :class:`Site` called ``name`` (KeyError listing the known sites otherwise)."""
    try:
        return SITES[name]
    except KeyError:
        raise KeyError(f"unknown site {name!r}; known: {sorted(SITES)}") from None
