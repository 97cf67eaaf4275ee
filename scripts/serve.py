"""The main job: make sure a model is registered (train the quick profile if none is), then serve it.

    .venv/bin/python scripts/serve.py                 # http://localhost:3000, OpenAPI page at /
    .venv/bin/python scripts/serve.py --port 3100 --workers 2

Everything after ``--`` goes to ``bentoml serve`` unchanged.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def model_registered(tag: str) -> bool:
    import bentoml
    from bentoml.exceptions import NotFound

    try:
        bentoml.models.get(tag)
        return True
    except NotFound:
        return False


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--port", type=int, default=3000)
    p.add_argument("--host", default="0.0.0.0")
    p.add_argument("--workers", type=int, help="API worker processes (SENTIMENT_SERVICE__WORKERS)")
    p.add_argument("--no-train", action="store_true", help="serve even without a model (tiers 2/3 answer alone)")
    p.add_argument("serve_args", nargs=argparse.REMAINDER, help="extra `bentoml serve` arguments after --")
    args = p.parse_args(argv)

    from sentiment.model.aliases import serving_tag
    from sentiment.settings import load_settings

    model = load_settings().model
    tag = serving_tag(model)
    if not args.no_train and (tag is None or not model_registered(tag)):
        print(f"no model {tag or model.name} in the store: training the quick profile first", flush=True)
        subprocess.run([sys.executable, str(REPO / "scripts" / "train.py"), "--profile", "quick"], cwd=REPO, check=True)
    env = dict(os.environ)
    if args.workers:
        env["SENTIMENT_SERVICE__WORKERS"] = str(args.workers)
    extra = [a for a in args.serve_args if a != "--"]
    cmd = [
        str(Path(sys.executable).parent / "bentoml"),
        "serve",
        "service:SentimentService",
        "--host",
        args.host,
        "--port",
        str(args.port),
        *extra,
    ]
    print("$", " ".join(cmd), flush=True)
    os.chdir(REPO)
    os.execve(cmd[0], cmd, env)  # the server replaces this process: signals reach it directly
    return 0  # pragma: no cover


if __name__ == "__main__":
    sys.exit(main())
