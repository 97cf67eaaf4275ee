"""Fault drills against a real server under load (``tools/chaos.py``, short settings): kill -9 the transformer
and the rules worker, then make the predictions log unwritable for a few seconds.

The script is run as a program (nothing imports ``scripts/``) and its JSON report is checked.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import REPO

pytestmark = pytest.mark.slow


def test_drills_answer_every_request_and_lose_no_record(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "tools.chaos",
            "--drills",
            "a,c,f",
            "--rate",
            "10",
            "--pre-s",
            "1.5",
            "--settle-s",
            "1",
            "--hang-s",
            "3",
            "--recover-s",
            "45",
            "--output-dir",
            str(tmp_path),
        ],
        cwd=REPO,
        check=True,
        timeout=240,
        capture_output=True,
    )
    report = json.loads((tmp_path / "chaos.json").read_text())
    drills = {d["drill"]: d for d in report["drills"]}
    assert set(drills) == {"a", "c", "f"}
    for d in drills.values():
        # No API worker is killed here, so every request must get a four-field 200 answer.
        assert d["non_contract"] == 0 and d["transport_errors"] == 0 and d["unanswered"] == 0, d
        assert d["records_lost"] == 0 and d["records_doubled"] == 0, d
        assert d["recovered"] and d["server_alive"], d
    kill = drills["a"]
    assert kill["ready_503_after_s"] is not None and kill["ready_503_after_s"] <= 2.0, kill["ready_timeline"]
    assert kill["ready_200_after_s"] is not None, kill["ready_timeline"]
    assert kill["respawn_s"] is not None
    assert set(kill["reasons"]) - {"ok"} <= {
        "fallback/model_unavailable",
        "fallback/model_error",
        "fallback/overload",
        "fallback/human_review",
        "fallback/low_confidence",
        "rejected/not_english",
        "rejected/too_short",
    }
    assert "degraded" in drills["f"]["health_during"] and drills["f"]["health_after"] == "ok"
    assert report["torn_lines"] == 0
