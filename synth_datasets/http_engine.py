"""The `openai` backend: any OpenAI-compatible server (vLLM's, a provider's) behind the engine seam.

    engine:
      backend: openai
      model: Qwen/Qwen2.5-7B-Instruct          # the served model's name
      base_url: http://127.0.0.1:8000/v1
      api_key_env: OPENAI_API_KEY              # the variable's name; the key itself never goes in a recipe
      max_concurrency: 64

How requests are fed. One event loop per engine runs in a thread of its own for the engine's life,
so `Dataset.map` calls `chat()` / `complete()` batch after batch without starting a loop per batch.
Inside a call, a sliding window keeps at most `max_concurrency` requests in flight and starts the
next one as soon as any finishes (never lock-step batches).

Failures:
- Connection errors, timeouts, 5xx and malformed answers are retried up to `max_retries` times,
  with exponential backoff and jitter, capped at `backoff_max` seconds.
- A 429 halves the window (never below `min_concurrency`) and honours `Retry-After`; each run of
  `recover_after` successes widens it by one again, up to `max_concurrency`.
- `requests_per_minute` and `tokens_per_minute` pace the starts.
- A request that still fails, or that the server refuses (4xx), becomes a `Completion` with `error`
  set: a recorded row error, never a lost batch.

Structured outputs:
- `json_schema` (default): OpenAI's `response_format`.
- `vllm`: vLLM's `structured_outputs` extra.
- `none`: parse and record.
- A server that answers a constrained request with 400 about the format is asked again without the
  constraint, for the rest of the run (warned once); the task's parser then records what does not
  parse.

Token counts come from each answer's `usage`. `cost()` prices them when the recipe gives
`price_input_per_million` / `price_output_per_million`. The key is read from the environment when
the engine is built and is held only in the client's headers: not in the options (so not in the
pickled state, the cache key, provenance or a card), and never logged.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar

from .engine import BackendOptions, Completion, EngineConfig, SamplingConfig

logger = logging.getLogger(__name__)

STRUCTURED = ("json_schema", "vllm", "none")


@dataclass(frozen=True)
class OpenAIOptions(BackendOptions):
    """The `openai` backend's settings (all but `base_url` and `structured_output` leave the outputs as they are)."""

    base_url: str = field(default="http://127.0.0.1:8000/v1", metadata={"help": "The server's OpenAI API root, ending in /v1."})
    api_key_env: str | None = field(default=None, metadata={"help": "Name of the environment variable holding the API key (none: no key sent)."})
    structured_output: str = field(default="json_schema", metadata={"help": "json_schema (response_format), vllm (structured_outputs extra) or none."})
    max_concurrency: int = field(default=256, metadata={"help": "Most requests in flight (the sliding window's width). 256 keeps a vLLM server's batch full: 64 gave 0.84 of the offline engine's tokens/s here, 256 gave 1.03 (docs/benchmarks.md); 429s narrow it."})
    min_concurrency: int = field(default=1, metadata={"help": "The narrowest the window gets after 429s."})
    recover_after: int = field(default=20, metadata={"help": "Successes in a row that widen the window by one after a 429."})
    max_retries: int = field(default=6, metadata={"help": "Retries of one request (connection error, timeout, 429, 5xx, malformed answer)."})
    timeout: float = field(default=120.0, metadata={"help": "Seconds per request."})
    backoff_base: float = field(default=0.5, metadata={"help": "First retry's delay in seconds, doubled each retry, with jitter."})
    backoff_max: float = field(default=30.0, metadata={"help": "Longest delay between retries."})
    requests_per_minute: float | None = field(default=None, metadata={"help": "Start at most this many requests a minute."})
    tokens_per_minute: float | None = field(default=None, metadata={"help": "Start at most this many tokens a minute (prompt estimate + max_tokens)."})
    price_input_per_million: float | None = field(default=None, metadata={"help": "Price of a million prompt tokens, for the cost figure."})
    price_output_per_million: float | None = field(default=None, metadata={"help": "Price of a million generated tokens, for the cost figure."})
    runtime_only: ClassVar[tuple[str, ...]] = (
        "api_key_env", "max_concurrency", "min_concurrency", "recover_after", "max_retries", "timeout", "backoff_base",
        "backoff_max", "requests_per_minute", "tokens_per_minute", "price_input_per_million", "price_output_per_million")

    def __post_init__(self):
        super().__post_init__()
        if self.structured_output not in STRUCTURED:
            raise ValueError(f"structured_output must be one of {STRUCTURED}, got {self.structured_output!r}")
        if not self.base_url.startswith(("http://", "https://")):
            raise ValueError(f"base_url must start with http:// or https://, got {self.base_url!r}")
        if not 1 <= self.min_concurrency <= self.max_concurrency:
            raise ValueError(f"need 1 <= min_concurrency <= max_concurrency, got {self.min_concurrency} and {self.max_concurrency}")
        if self.max_retries < 0 or self.timeout <= 0:
            raise ValueError("max_retries must be >= 0 and timeout > 0")


class Window:
    """The sliding window: at most `limit` requests in flight; halved on a 429 (not below `floor`),
    widened by one after `recover_after` successes in a row (not above `ceiling`). `history`
    records each change (for tests and the log)."""

    def __init__(self, ceiling: int, floor: int, recover_after: int):
        self.limit = self.ceiling = ceiling
        self.floor, self.recover_after = floor, recover_after
        self.in_flight = self.peak = self.streak = 0
        self.history: list[int] = [ceiling]
        self._cond = asyncio.Condition()

    async def acquire(self) -> None:
        async with self._cond:
            await self._cond.wait_for(lambda: self.in_flight < self.limit)
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)

    async def release(self, outcome: str) -> None:
        """outcome: "ok", "throttled" (429) or "failed" (anything else that will be retried or recorded)."""
        async with self._cond:
            self.in_flight -= 1
            if outcome == "throttled":
                self.streak = 0
                new = max(self.floor, self.limit // 2)
                if new != self.limit:
                    self.limit = new
                    self.history.append(new)
                    logger.warning("the server throttles (429): %d requests in flight at most now", new)
            elif outcome == "ok":
                self.streak += 1
                if self.limit < self.ceiling and self.streak >= self.recover_after:
                    self.streak = 0
                    self.limit += 1
                    self.history.append(self.limit)
            self._cond.notify_all()


class Pacer:
    """Requests- and tokens-per-minute limits: token buckets refilled continuously, each holding at
    most one second's worth (so a limit is never spent in one burst at the start of a minute)."""

    def __init__(self, rpm: float | None, tpm: float | None):
        self.rpm, self.tpm = rpm, tpm
        self.request_cap = max(1.0, rpm / 60) if rpm else 0.0
        self.token_cap = max(1.0, tpm / 60) if tpm else 0.0
        self.requests, self.tokens = self.request_cap, self.token_cap
        self.last = time.monotonic()
        self._lock = asyncio.Lock()

    async def wait(self, tokens: int) -> None:
        if not self.rpm and not self.tpm:
            return
        async with self._lock:  # one start at a time, in order
            want = min(float(tokens), self.token_cap)  # a request bigger than a second's tokens waits for a full bucket
            while True:
                now = time.monotonic()
                elapsed, self.last = now - self.last, now
                if self.rpm:
                    self.requests = min(self.request_cap, self.requests + elapsed * self.rpm / 60)
                if self.tpm:
                    self.tokens = min(self.token_cap, self.tokens + elapsed * self.tpm / 60)
                need_r = 0.0 if not self.rpm or self.requests >= 1 else (1 - self.requests) * 60 / self.rpm
                need_t = 0.0 if not self.tpm or self.tokens >= want else (want - self.tokens) * 60 / self.tpm
                if need_r == 0 and need_t == 0:
                    self.requests -= 1 if self.rpm else 0
                    self.tokens -= want if self.tpm else 0
                    return
                await asyncio.sleep(max(need_r, need_t))


class _Retry(Exception):
    def __init__(self, why: str, throttled: bool = False, after: float | None = None):
        super().__init__(why)
        self.why, self.throttled, self.after = why, throttled, after


class OpenAIEngine:
    """An OpenAI-compatible server as an engine (see the module docstring)."""

    options_class = OpenAIOptions
    uses_accelerator = False  # a replica is an HTTP client: on Ray it asks for no GPU
    default_model = None

    def __init__(self, config: EngineConfig):
        import httpx  # the `http` extra; vLLM depends on it too

        self.config, self.options = config, config.options
        if not config.model:
            raise ValueError("engine.model: the openai backend needs the name the server serves the model under "
                             "(generator.model in a recipe)")
        headers = {"Content-Type": "application/json"}
        if self.options.api_key_env:
            key = os.environ.get(self.options.api_key_env)
            if not key:
                raise ValueError(f"engine.api_key_env: the environment variable {self.options.api_key_env} is not set")
            headers["Authorization"] = f"Bearer {key}"
        self._httpx = httpx
        self._headers = headers
        self.constrain = self.options.structured_output
        self.stats = {"requests": 0, "retries": 0, "throttled": 0, "errors": 0, "prompt_tokens": 0, "completion_tokens": 0}
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="openai-engine", daemon=True)
        self._thread.start()
        self._call(self._setup())

    async def _setup(self) -> None:
        o = self.options
        self._client = self._httpx.AsyncClient(
            base_url=o.base_url.rstrip("/"), headers=self._headers, timeout=o.timeout,
            limits=self._httpx.Limits(max_connections=o.max_concurrency, max_keepalive_connections=o.max_concurrency))
        self.window = Window(o.max_concurrency, o.min_concurrency, o.recover_after)
        self._pacer = Pacer(o.requests_per_minute, o.tokens_per_minute)

    def _call(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    # -- the engine protocol -----------------------------------------------------------------------
    def chat(self, conversations, sampling: SamplingConfig, json_schema: dict | None = None,
             on_done=None) -> list[Completion]:
        """One completion per conversation, in order. `on_done(i, completion)` is called as request i
        ends (in the engine's thread): resumable runs journal each one (shards.RequestJournal)."""
        bodies = [{"messages": list(c), **self._sampling(sampling)} for c in conversations]
        return self._call(self._run("/chat/completions", bodies, json_schema, chat=True, on_done=on_done))

    def complete(self, prompts, sampling: SamplingConfig, json_schema: dict | None = None,
                 on_done=None) -> list[Completion]:
        bodies = [{"prompt": p, **self._sampling(sampling)} for p in prompts]
        return self._call(self._run("/completions", bodies, json_schema, chat=False, on_done=on_done))

    def describe(self) -> dict[str, Any]:
        return {"backend": "openai", "base_url": self.options.base_url, "structured_output": self.constrain,
                "stats": dict(self.stats), "cost": self.cost()}

    def cost(self) -> float | None:
        """The run's price so far, when the recipe gives prices per million tokens."""
        pin, pout = self.options.price_input_per_million, self.options.price_output_per_million
        if pin is None and pout is None:
            return None
        return round((pin or 0) * self.stats["prompt_tokens"] / 1e6 + (pout or 0) * self.stats["completion_tokens"] / 1e6, 6)

    def shutdown(self) -> None:
        if self._loop.is_running():
            try:
                self._call(self._client.aclose())
            finally:
                self._loop.call_soon_threadsafe(self._loop.stop)
                self._thread.join(timeout=5)

    # -- requests ----------------------------------------------------------------------------------
    def _sampling(self, s: SamplingConfig) -> dict:
        body: dict[str, Any] = {"model": self.config.model, "temperature": s.temperature, "top_p": s.top_p,
                                "max_tokens": s.max_tokens}
        if s.stop:
            body["stop"] = list(s.stop)
        if s.min_tokens:
            body["min_tokens"] = s.min_tokens  # vLLM's extra sampling fields
        if s.ignore_eos:
            body["ignore_eos"] = True
        return body

    def _constrained(self, body: dict, schema: dict | None) -> dict:
        if schema is None or self.constrain == "none":
            return body
        if self.constrain == "vllm":
            return {**body, "structured_outputs": {"json": schema}}
        return {**body, "response_format": {"type": "json_schema", "json_schema": {"name": "row", "schema": schema, "strict": True}}}

    async def _run(self, path: str, bodies: list[dict], schema: dict | None, chat: bool, on_done=None) -> list[Completion]:
        async def one(i: int, body: dict) -> Completion:
            completion = await self._one(path, body, schema, chat)
            if on_done is not None:
                on_done(i, completion)
            return completion

        return list(await asyncio.gather(*(one(i, body) for i, body in enumerate(bodies))))

    async def _one(self, path: str, body: dict, schema: dict | None, chat: bool) -> Completion:
        o = self.options
        estimate = len(json.dumps(body.get("messages") or body.get("prompt"))) // 4 + body["max_tokens"]
        last = "no attempt"
        for attempt in range(o.max_retries + 1):
            if attempt:
                self.stats["retries"] += 1
            await self._pacer.wait(estimate)
            await self.window.acquire()
            outcome = "failed"
            try:
                completion = await self._send(path, self._constrained(body, schema), chat)
                outcome = "ok"
                return completion
            except Exception as err:  # noqa: BLE001 - anything unforeseen is this row's error, never the batch's
                if not isinstance(err, _Retry):
                    self.stats["errors"] += 1
                    return Completion("", None, error=f"request failed: {type(err).__name__}: {err}")
                last, outcome = err.why, ("throttled" if err.throttled else "failed")
                if err.throttled:
                    self.stats["throttled"] += 1
                delay = err.after if err.after is not None else min(o.backoff_max, o.backoff_base * 2 ** attempt)
                delay *= random.uniform(0.5, 1.0) if err.after is None else 1.0
            finally:
                await self.window.release(outcome)
            if attempt < o.max_retries:
                await asyncio.sleep(delay)
        self.stats["errors"] += 1
        return Completion("", None, error=f"request failed after {o.max_retries + 1} attempts: {last}")

    async def _send(self, path: str, body: dict, chat: bool) -> Completion:
        """One request. Returns the completion, a Completion with `error` for an answer that will not
        change (4xx), or raises _Retry."""
        httpx = self._httpx
        self.stats["requests"] += 1
        try:
            response = await self._client.post(path, json=body)
        except httpx.TimeoutException as err:
            raise _Retry(f"timeout ({type(err).__name__})") from None
        except httpx.RequestError as err:  # connection refused, reset, dropped, a truncated or undecodable answer
            raise _Retry(f"connection error ({type(err).__name__}: {err})") from None
        status = response.status_code
        if status == 429:
            raise _Retry("429 too many requests", throttled=True, after=_retry_after(response))
        if status >= 500 or status == 408:
            raise _Retry(f"server error {status}")
        if status >= 400:
            text = response.text[:300]
            if status == 400 and ("response_format" in body or "structured_outputs" in body) and \
                    any(w in text.lower() for w in ("response_format", "json_schema", "structured", "guided")):
                if self.constrain != "none":
                    logger.warning("the server refuses constrained output (%s); asking without it for the rest of the run, "
                                   "and recording what does not parse", text.splitlines()[0][:160])
                    self.constrain = "none"
                raise _Retry("constrained output refused; asking again without it", after=0.0)
            self.stats["errors"] += 1
            return Completion("", None, error=f"the server refused the request ({status}): {text}")
        try:
            data = response.json()
            choice = data["choices"][0]
            text = choice["message"]["content"] if chat else choice["text"]
            if text is None:
                text = ""
            usage = data.get("usage") or {}
        except (ValueError, KeyError, IndexError, TypeError) as err:
            raise _Retry(f"malformed answer ({type(err).__name__}: {response.text[:80]!r})") from None
        prompt_tokens, completion_tokens = int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
        self.stats["prompt_tokens"] += prompt_tokens
        self.stats["completion_tokens"] += completion_tokens
        return Completion(text, choice.get("finish_reason"), prompt_tokens, completion_tokens)


def _retry_after(response) -> float | None:
    value = response.headers.get("retry-after")
    try:
        return max(0.0, min(60.0, float(value))) if value is not None else None
    except ValueError:
        return None


def _register() -> None:
    from .engine import BACKENDS
    from .registry import BUILTIN

    if "openai" not in BACKENDS:
        BACKENDS.register("openai", OpenAIEngine, BUILTIN)


_register()
