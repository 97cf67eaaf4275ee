"""The frozen evaluation set's recipe: what a stored model records must rebuild the split it was fingerprinted on."""

import json
from pathlib import Path

from sentiment.contract import Label
from sentiment.model.registry import ModelMetadata
from training.config import make_config
from training.evalset import HumanExample, eval_spec_of, stream_weights


def test_the_recipe_keeps_the_behaviour_sentences_the_training_split_had() -> None:
    # The quick profile adds the behaviour suite's negation half to the training split, and the fingerprint covers
    # that split: a recipe without it rebuilds another split, and the gate then refuses to run at all.
    trained = make_config("quick", base_model="m")
    meta = ModelMetadata(base_model="m", train_config=trained.model_dump(mode="json"), data_fingerprint="f")
    spec = eval_spec_of(meta)
    assert spec is not None and spec.same_data(trained)
    rebuilt = spec.train_config()
    assert (rebuilt.augment_behaviour, rebuilt.augment_categories) == (30, ("negation",))
    assert not spec.same_data(trained.model_copy(update={"augment_behaviour": 0}))


def test_a_label_weighs_what_the_labelling_sample_recorded_and_others_weigh_one(tmp_path: Path) -> None:
    sample = tmp_path / "labelling_sample.jsonl"
    opinion = {"label": "positive", "confidence": 0.55, "detail": ""}
    rows = [
        {
            "request_id": "r1",
            "text": "t",
            "selection": "random",
            "weight": 37.5,
            "margin": 0.4,
            "probs": [0.1, 0.2, 0.7],
        },
        {
            "request_id": "r2",
            "text": "t",
            "selection": "margin",
            "weight": 1.0,
            "margin": 0.1,
            "probs": [0.3, 0.3, 0.4],
        },
    ]
    sample.write_text("".join(json.dumps(r | {"model": opinion}) + "\n" for r in rows) + '{"request_id": "r3", "te')

    def example(*ids: str) -> HumanExample:
        return HumanExample(text="t", label=Label.positive, ts="2026-12-06T00:00:00Z", request_ids=list(ids))

    # a random pick, a margin pick, a queue item (never sampled), a label given twice, a torn last line
    got = stream_weights([example("r1"), example("r2"), example("q9"), example("q9", "r1"), example("r3")], sample)
    assert got == [37.5, 1.0, 1.0, 37.5, 1.0]
    assert stream_weights([example("r1")], tmp_path / "missing.jsonl") == [1.0]
