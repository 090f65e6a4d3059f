"""Precision selection: the CUDA path (QLoRA) is chosen by logic that runs on any machine."""

import pytest

from s2l.train import select_precision


def test_auto_uses_qlora_on_cuda_and_fp32_on_cpu() -> None:
    cuda = select_precision("auto", cuda_available=True)
    assert (cuda.device, cuda.quantize_4bit, cuda.compute_dtype) == ("cuda", True, "bfloat16")
    cpu = select_precision("auto", cuda_available=False)
    assert (cpu.device, cpu.quantize_4bit, cpu.compute_dtype) == ("cpu", False, "float32")
    assert "nf4" in cuda.label and "cpu" in cpu.label


def test_none_never_quantizes() -> None:
    assert not select_precision("none", cuda_available=True).quantize_4bit


def test_nf4_without_cuda_and_unknown_settings_are_errors() -> None:
    with pytest.raises(ValueError, match="needs a CUDA GPU"):
        select_precision("nf4", cuda_available=False)
    with pytest.raises(ValueError, match="not one of"):
        select_precision("int8", cuda_available=True)
