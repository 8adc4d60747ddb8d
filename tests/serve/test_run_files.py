"""Which run files the Serve app hands out, and the 404s that say why not (no Ray, no HTTP)."""

import pytest

from bdc_ray.serve.api import APIError
from bdc_ray.serve.run_files import run_file


def _refusal(runs, run, name) -> str:
    with pytest.raises(APIError) as err:
        run_file(runs, run, name)
    assert err.value.status == 404
    return str(err.value)


def test_report_files_of_a_run_and_nothing_else(tmp_path):
    report = tmp_path / "r1" / "report"
    report.mkdir(parents=True)
    (report / "explorer.html").write_text("<html>page</html>")
    (report / "report.md").write_text("# report")
    (tmp_path / "r1" / "config.yaml").write_text("secret: no")
    (tmp_path / "r2").mkdir()
    body, headers = run_file(str(tmp_path), "r1", "explorer.html")
    assert body == b"<html>page</html>"
    assert headers == {"content-type": "text/html; charset=utf-8", "x-content-type-options": "nosniff"}
    assert run_file(str(tmp_path), "r1", "report.md")[1]["content-type"] == "text/markdown; charset=utf-8"
    for run, name in [("r1", "config.yaml"), ("..", "explorer.html"), ("r1", "../config.yaml"), ("r1", ".x.html"),
                      ("r1/report", "x.md"), ("r1", "explorer")]:
        assert "no such run file" in _refusal(str(tmp_path), run, name), (run, name)
    assert "bdc report" in _refusal(str(tmp_path), "r2", "explorer.html")
    assert "does not exist" in _refusal(str(tmp_path), "r1", "boost_tree.png")
    assert "not readable from this replica" in _refusal(str(tmp_path), "r3", "explorer.html")
    assert "serves no run folders" in _refusal(None, "r1", "explorer.html")
