"""The frozen evaluation set's recipe: what a stored model records must rebuild the split it was fingerprinted on."""

from sentiment.model.registry import ModelMetadata
from training.config import make_config
from training.evalset import eval_spec_of


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
