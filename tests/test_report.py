import json
from pathlib import PurePosixPath

from neurotwin_db.report import Issue, Report, Severity


def test_report_filters_and_serialises(tmp_path):
    report = Report([Issue("A", Severity.HINT, "h"),
                     Issue("B", Severity.ERROR, "e", PurePosixPath("x.json"), "fix it")])
    assert report.failed()
    assert not report.at_least(Severity.CRITICAL).failed()
    assert [i.code for i in report.at_least(Severity.WARNING)] == ["B"]
    path = report.write_jsonl(tmp_path / "r.jsonl")
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines[1] == {"code": "B", "severity": "error", "message": "e", "path": "x.json",
                        "hint": "fix it", "dataset": None}
