"""A fault-injecting OpenAI-compatible server for tests, on 127.0.0.1 only.

    with FaultServer(faults=lambda n, body: "429" if n < 5 else None) as server:
        engine = OpenAIEngine(EngineConfig.from_dict({"backend": "openai", "model": "m", "base_url": server.url}))

It answers `POST /v1/chat/completions` and `POST /v1/completions` with `responder(body)` (default:
an echo of the last message or the prompt) and `usage` token counts. `faults(n, body)` is asked,
for the n-th request (from 0), what to do instead of answering:
- "429": 429 with `Retry-After: 0`;
- "500": a server error;
- "timeout": wait `hang` seconds before answering, longer than the client's timeout;
- "drop": close the connection without answering;
- "malformed": 200 with a body that is not JSON;
- "truncated": 200 whose body stops halfway (Content-Length promises more);
- "refuse_format": 400 saying response_format is not supported, when the request has one;
- a float: answer normally after that many seconds (slow requests, mixed lengths);
- None: answer normally.

It records each request (its body and what it got), the most requests it had in flight at once,
and checks `Authorization` when `key` is set (401 otherwise). It stops by itself after
`max_requests` requests or `lifetime` seconds.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler
from typing import Callable

from loopback import LoopbackServer


def echo(body: dict) -> str:
    if "messages" in body:
        return f"echo: {body['messages'][-1]['content']}"
    return f"echo: {body['prompt']}"


class FaultServer(LoopbackServer):
    def __init__(self, responder: Callable[[dict], str] = echo, faults: Callable[[int, dict], object] | None = None,
                 key: str | None = None, hang: float = 3.0, max_requests: int = 5000, lifetime: float = 300.0):
        super().__init__(lifetime)
        self.responder, self.faults, self.key, self.hang = responder, faults or (lambda n, body: None), key, hang
        self.max_requests = max_requests
        self.lock = threading.Lock()
        self.log: list[tuple[dict, str]] = []  # (body, what it got: "ok" or the fault)
        self.in_flight = self.peak = 0

    @property
    def url(self) -> str:
        host, port = self.address
        return f"http://{host}:{port}/v1"


class _Handler(BaseHTTPRequestHandler):
    owner: FaultServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):
        pass

    def do_GET(self):
        if self.path.rstrip("/").endswith("/health"):
            self._send(200, b"{}")
        else:
            self._send(404, b'{"error": "not found"}')

    def do_POST(self):
        owner = self.owner
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        with owner.lock:
            n = len(owner.log)
            if n >= owner.max_requests:
                owner.stop()
            owner.in_flight += 1
            owner.peak = max(owner.peak, owner.in_flight)
        try:
            fault = owner.faults(n, body)
            with owner.lock:
                owner.log.append((body, "ok" if fault is None or isinstance(fault, float) else str(fault)))
            self._answer(body, fault)
        finally:
            with owner.lock:
                owner.in_flight -= 1

    def _answer(self, body: dict, fault) -> None:
        owner = self.owner
        if owner.key is not None and self.headers.get("Authorization") != f"Bearer {owner.key}":
            return self._send(401, b'{"error": {"message": "invalid key"}}')
        if self.path not in ("/v1/chat/completions", "/v1/completions"):
            return self._send(404, b'{"error": "not found"}')
        if fault == "429":
            return self._send(429, b'{"error": {"message": "rate limited"}}', {"Retry-After": "0"})
        if fault == "500":
            return self._send(500, b'{"error": {"message": "boom"}}')
        if fault == "refuse_format" and "response_format" in body:
            return self._send(400, b'{"error": {"message": "response_format json_schema is not supported"}}')
        if fault == "drop":
            self.close_connection = True
            self.connection.shutdown(2)
            return None
        if fault == "timeout":
            time.sleep(owner.hang)
        if isinstance(fault, float):
            time.sleep(fault)
        text = owner.responder(body)
        chat = "messages" in body
        choice = {"index": 0, "finish_reason": "stop", **({"message": {"role": "assistant", "content": text}} if chat else {"text": text})}
        prompt = json.dumps(body.get("messages") or body.get("prompt"))
        answer = json.dumps({"id": "x", "object": "chat.completion" if chat else "text_completion", "model": body.get("model"),
                             "choices": [choice], "usage": {"prompt_tokens": len(prompt.split()),
                                                            "completion_tokens": len(text.split())}}).encode()
        if fault == "malformed":
            return self._send(200, b'{"choices": [ {"mess')
        if fault == "truncated":
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer[: len(answer) // 2])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(2)
            return None
        return self._send(200, answer)

    def _send(self, status: int, data: bytes, headers: dict | None = None) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass


FaultServer.handler = _Handler
