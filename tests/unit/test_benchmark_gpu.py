"""The benchmark's GPU section refuses clearly on a machine without CUDA (this one, and CI) instead of measuring the
CPU and calling it a GPU figure."""

from __future__ import annotations

import pytest

from experiments.benchmark import require_cuda


def test_the_gpu_section_stops_with_a_clear_message_without_cuda() -> None:
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: the section runs instead of refusing")
    with pytest.raises(SystemExit) as stop:
        require_cuda()
    assert "--device cuda: no CUDA device here" in str(stop.value) and "never run in CI" in str(stop.value)


def test_a_gpu_service_must_run_the_torch_backend() -> None:
    from pydantic import ValidationError

    from sentiment.settings import load_settings

    with pytest.raises(ValidationError, match="device=cuda needs service.backend=torch"):
        load_settings(service={"device": "cuda"})
    assert load_settings(service={"device": "cuda", "backend": "torch"}).service.device == "cuda"
