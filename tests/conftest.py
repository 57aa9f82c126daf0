"""Shared fixtures: a fake engine for the fast tests, one real vLLM engine per session for the slow ones.

The fake engine is registered in `engine.BACKENDS` under "fake" for the whole session (from
collection on, since test modules build its config at import) and removed in `finally`, like
simonw/llm's MockModel. It answers classification prompts with valid JSON unless a
test swaps its `responder`, and counts calls so tests can see batching and cache hits.
"""

from __future__ import annotations

import hashlib
import json
import re

import pytest

from dataclasses import dataclass

from synth_datasets import engine as engine_mod

# Not a test module: Ray scenarios that tests/test_ray.py runs in processes of their own. It imports
# ray, which the base install and the fast tests do not need (--doctest-modules would import it).
collect_ignore = ["ray_jobs.py"]
from synth_datasets.engine import BackendOptions, Completion, EngineConfig

REAL_ENGINE = EngineConfig(max_model_len=1024, seed=0)  # every slow test uses this: one engine per session


def default_responder(conversation: list[dict]) -> str:
    """A valid classification answer: the label the prompt asked for and a text derived from the prompt."""
    prompt = conversation[-1]["content"]
    match = re.search(r'"label" is "([^"]+)"', prompt)
    label = match.group(1) if match else "unknown"
    digest = hashlib.sha1(prompt.encode()).hexdigest()[:8]
    return json.dumps({"text": f"message {digest} about {label.replace('_', ' ')}", "label": label})


def default_completer(prompt: str) -> str:
    """A continuation of a plain-text prompt: a few words derived from it, then a blank line."""
    digest = hashlib.sha1(prompt.encode()).hexdigest()[:8]
    return f" continued {digest}\n\n"


@dataclass(frozen=True)
class FakeOptions(BackendOptions):
    """Options of the fake backend: one that changes outputs, two that only change memory use."""

    style: str = "plain"
    kv_cache_space_gib: int | None = None
    gpu_memory_utilization: float = 0.9
    api_key_env: str | None = None
    runtime_only = ("kv_cache_space_gib", "gpu_memory_utilization")


class FakeEngine:
    """Satisfies the engine protocol without a model.

    Like a grammar-constrained engine, it only returns JSON that fits the `json_schema` it is given:
    a responder's answer that breaks the schema fails the test (`SchemaBroken`), so a change that
    makes the schema disagree with what the task asks for (a missing label in the enum, a wrong
    field name) shows in the fast tests. A test that plays an engine without constraints (an HTTP
    server that cannot constrain, a model that rambles) sets `constrained = False`.
    """

    options_class = FakeOptions
    responder = staticmethod(default_responder)
    completer = staticmethod(default_completer)
    constrained = True
    calls: list[int] = []  # batch sizes of every chat() call, across instances

    def __init__(self, config: EngineConfig):
        self.config = config

    def chat(self, conversations, sampling, json_schema=None):
        FakeEngine.calls.append(len(conversations))
        out = []
        for conv in conversations:
            text = type(self).responder(conv)
            if json_schema is not None and type(self).constrained:
                _check_against(json_schema, text)
            truncated = len(text.split()) > sampling.max_tokens
            if truncated:
                text = " ".join(text.split()[: sampling.max_tokens])
            out.append(Completion(text, "length" if truncated else "stop", len(str(conv).split()), len(text.split())))
        return out

    def complete(self, prompts, sampling, json_schema=None):
        """Completion mode: `completer(prompt)` continues each plain-text prompt."""
        FakeEngine.calls.append(len(prompts))
        out = []
        for prompt in prompts:
            text = type(self).completer(prompt)
            if json_schema is not None and type(self).constrained:
                _check_against(json_schema, text)
            words = text.split(" ")
            truncated = len(words) > sampling.max_tokens
            if truncated:
                text = " ".join(words[: sampling.max_tokens])
            out.append(Completion(text, "length" if truncated else "stop", len(prompt.split()), len(text.split())))
        return out

    def describe(self):
        return {"backend": "fake"}


class SchemaBroken(AssertionError):
    """The fake engine was asked for the schema's JSON and its responder wrote something else."""


def _check_against(schema: dict, text: str) -> None:
    import jsonschema

    try:
        jsonschema.validate(json.loads(text), schema)
    except (ValueError, jsonschema.ValidationError) as e:
        raise SchemaBroken(f"a grammar-constrained engine could not have written {text[:120]!r} for this schema: "
                           f"{str(e).splitlines()[0]} (set FakeEngine.constrained = False to play an unconstrained one)") from None


# registered when the tests are collected: test modules build EngineConfig(backend="fake") at import
engine_mod.BACKENDS.register("fake", FakeEngine)


@pytest.fixture(scope="session", autouse=True)
def fake_backend():
    try:
        yield FakeEngine
    finally:
        engine_mod.BACKENDS.unregister("fake")


@pytest.fixture
def fake_engine(fake_backend, monkeypatch):
    """The fake engine with a fresh call log and the default responder."""
    FakeEngine.calls = []
    monkeypatch.setattr(FakeEngine, "responder", staticmethod(default_responder))
    monkeypatch.setattr(FakeEngine, "completer", staticmethod(default_completer))
    monkeypatch.setattr(FakeEngine, "constrained", True)
    yield FakeEngine
    for key in [k for k in engine_mod._ENGINES if k.backend == "fake"]:
        del engine_mod._ENGINES[key]


@pytest.fixture(scope="session")
def real_engine_config():
    """The real engine's config; the engine itself is built by the first test that generates, and
    held for the session (stages release their engines when done: this one is shared)."""
    with engine_mod.keep(REAL_ENGINE):
        yield REAL_ENGINE
    engine_mod.shutdown_engines()
