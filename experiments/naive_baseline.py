"""The baseline the benchmark beats: the same model behind a plain per-request FastAPI + uvicorn endpoint.

What most tutorials ship: load at start-up, one request = one forward pass, no batching, no gates, no logging.

    .venv/bin/python experiments/naive_baseline.py --port 3200
"""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import get_args

from fastapi import FastAPI
from pydantic import BaseModel, Field

from sentiment.contract import LABELS
from sentiment.model.aliases import require_serving_tag
from sentiment.model.inference import SentimentModel
from sentiment.settings import Backend, load_settings


class Review(BaseModel):
    text: str = Field(min_length=1)


class Answer(BaseModel):
    label: str
    confidence: float


def make_app(tag: str, num_threads: int | None, backend: Backend, onnx_cache: Path) -> FastAPI:
    state: dict[str, SentimentModel] = {}

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        state["model"] = SentimentModel.from_store(tag, num_threads=num_threads, backend=backend, onnx_cache=onnx_cache)
        yield

    app = FastAPI(lifespan=lifespan)

    @app.post("/predict")
    def predict(review: Review) -> Answer:
        probs = state["model"].predict([review.text])[0]
        best = int(probs.argmax())
        return Answer(label=LABELS[best], confidence=float(probs[best]))

    return app


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--port", type=int, default=3200)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--threads", type=int, help="torch threads (default: torch's own choice)")
    p.add_argument(
        "--backend",
        choices=list(get_args(Backend)),
        default="torch",
        help="torch: what tutorials ship; the service's backend: the like-for-like baseline",
    )
    args = p.parse_args(argv)
    settings = load_settings()
    app = make_app(require_serving_tag(settings.model), args.threads, args.backend, settings.paths.data_dir / "onnx")
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
