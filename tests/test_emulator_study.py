"""Smoke test: the emulator study runs in its tiny configuration and writes its outputs."""
import pandas as pd

from experiments import emulator_study


def test_emulator_study_quick(tmp_path):
    res = emulator_study.main(["--quick", "--out", str(tmp_path)])
    for f in ("REPORT.md", "results.csv", "gradients.csv", "speed.csv", "vprm_training.csv",
              "vprm_heldout_params.png", "vprm_munich.png", "vprm_gradients.png", "toy_rollout.png",
              "vprm_surrogate/config.json", "vprm_surrogate/weights.npz"):
        assert (tmp_path / f).exists(), f
    table = pd.read_csv(tmp_path / "results.csv")
    assert {"gpp", "reco", "nee", "soil_water_content", "et"} <= set(table["output"])
    assert table["r2"].notna().all()          # every comparison produced finite pairs
    assert set(res["speed"]["batch"]) == {1, 1024}
