"""``sentiment-dashboard``: ``streamlit run`` on the app file.

Extra arguments go to Streamlit, e.g. ``sentiment-dashboard --server.port=8502``.
"""

from __future__ import annotations

import sys
from pathlib import Path

APP = Path(__file__).with_name("app.py")
# An operator console: no telemetry, no "Deploy" menu. Later flags on the command line override these.
DEFAULTS = ("--browser.gatherUsageStats=false", "--client.toolbarMode=viewer")


def main() -> None:
    from streamlit.web import cli as stcli

    sys.argv = ["streamlit", "run", str(APP), *DEFAULTS, *sys.argv[1:]]
    sys.exit(stcli.main())


if __name__ == "__main__":
    main()
