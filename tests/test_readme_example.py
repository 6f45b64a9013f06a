"""The README's ten-line example runs and prints what the README says it prints."""
import re
from pathlib import Path


def test_readme_example_runs(capsys):
    text = (Path(__file__).parents[1] / "README.md").read_text()
    code = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    exec(compile(code, "README.md", "exec"), {})
    out = capsys.readouterr().out
    r2 = float(re.search(r"hourly R2 vs tower NEE: ([0-9.]+)", out).group(1))
    claimed = float(re.search(r"# ([0-9.]+)\s*$", code.strip().splitlines()[-1]).group(1))
    assert abs(r2 - claimed) < 0.01
