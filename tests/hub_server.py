"""A strict Hub-protocol server for tests: the part of the Hugging Face Hub's HTTP API that
`huggingface_hub` (2.x), `datasets` and `transformers` use to create a repo, push files, read them
back and load a model, served from memory on 127.0.0.1.

    with HubServer(tokens={"hf_test": "tester"}) as hub:
        env = hub.client_env(token="hf_test")       # HF_ENDPOINT and friends, for a subprocess
        ...

What it holds to, as the real Hub does (the routes and answers follow the clients' own source:
huggingface_hub's hf_api.py, _commit_api.py, lfs.py, file_download.py; datasets' arrow_dataset.py
and load.py):
- repos of type model and dataset, public or private, with branches and a commit history; every
  commit stays readable by its sha;
- writes need a valid token (`Authorization: Bearer`), reading a private repo too: 401 without a
  token, 404 for another user, with `X-Error-Code: RepoNotFound` (the clients map errors by that
  header on a plain-http endpoint);
- preupload answers "lfs" for parquet/arrow/safetensors/bin files, files over 10 MB and binary
  samples, "regular" otherwise; LFS objects go through the batch API and a PUT whose bytes are
  checked against their sha256;
- a commit is NDJSON (header, file, lfsFile, deletedFile, deletedFolder lines) and names its parent
  commit: a stale parent gets 412, an unknown branch 404 RevisionNotFound, an lfsFile never
  uploaded 400;
- a commit whose files contain one of the server's tokens is refused (400), as the Hub's secret
  scanning refuses a pushed token;
- `POST /api/validate-yaml` really parses the card's YAML front matter (yaml.safe_load) and checks
  the fields the Hub checks for type (license, language, tags, task_categories, size_categories,
  configs): 400 with the errors when it does not hold;
- any route it does not know gets 501, so that a client that changed its protocol shows up as a
  failing test, not as a silent pass.

The server stops by itself after `max_requests` requests or `lifetime` seconds, whichever comes
first, and listens on 127.0.0.1 only. `requests` records (method, path, status) of each one.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, unquote, urlsplit

from loopback import LoopbackServer

LFS_SUFFIXES = (".parquet", ".arrow", ".safetensors", ".bin", ".pt", ".pth", ".gguf", ".h5", ".msgpack", ".onnx")
LFS_SIZE = 10 * 1024 * 1024
GITATTRIBUTES = b"*.parquet filter=lfs diff=lfs merge=lfs -text\n*.safetensors filter=lfs diff=lfs merge=lfs -text\n"


def git_oid(content: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


@dataclass
class Blob:
    content: bytes
    lfs: bool

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()

    def entry(self, path: str) -> dict:
        out = {"type": "file", "path": path, "oid": git_oid(self.content), "size": len(self.content)}
        if self.lfs:
            out["lfs"] = {"oid": self.sha256, "size": len(self.content), "pointerSize": 134}
        return out

    @property
    def etag(self) -> str:
        return self.sha256 if self.lfs else git_oid(self.content)


@dataclass
class Commit:
    sha: str
    parent: str | None
    title: str
    files: dict[str, Blob]
    message: str = ""


@dataclass
class Repo:
    type: str  # "model" or "dataset"
    id: str
    owner: str
    private: bool
    commits: dict[str, Commit] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)

    def resolve(self, revision: str) -> Commit | None:
        if revision in self.branches:
            return self.commits[self.branches[revision]]
        matches = [c for sha, c in self.commits.items() if re.fullmatch(r"[0-9a-f]{5,40}", revision) and sha.startswith(revision)]
        return matches[0] if len(matches) == 1 else None


class HubError(Exception):
    def __init__(self, status: int, message: str, code: str | None = None, headers: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.code, self.headers = status, message, code, headers or {}


class HubServer(LoopbackServer):
    """The server (see the module docstring). `tokens`: token -> user name."""

    owner_attr = "server_hub"

    def __init__(self, tokens: dict[str, str] | None = None, max_requests: int = 5000, lifetime: float = 600.0):
        super().__init__(lifetime)
        self.tokens = dict(tokens or {"hf_test_token_0000000000000000000000": "tester"})
        self.repos: dict[tuple[str, str], Repo] = {}
        self.lfs: dict[str, bytes] = {}
        self.requests: list[tuple[str, str, int]] = []
        self.max_requests = max_requests
        self.lock = threading.RLock()
        # fault injection: (regex on "METHOD /path", action[, skip]) acts once, on the first matching request after
        # `skip` matching ones: action is a status to answer, "drop" (close the connection, no answer), "drop_after"
        # (do the request, then close without answering: a lost answer), or a callable(hub) run just before it
        self.fail_next: list[tuple] = []

    # -- lifecycle ---------------------------------------------------------------------------------
    @property
    def endpoint(self) -> str:
        host, port = self.address
        return f"http://{host}:{port}"

    def client_env(self, token: str | None = None, home: str | None = None) -> dict[str, str]:
        """Environment for a client subprocess: this endpoint, Xet off, no call to any other host."""
        env = {"HF_ENDPOINT": self.endpoint, "HF_HUB_DISABLE_XET": "1", "HF_UPDATE_DOWNLOAD_COUNTS": "0",
               "DISABLE_SAFETENSORS_CONVERSION": "1", "HF_HUB_DISABLE_TELEMETRY": "1", "HF_HUB_OFFLINE": "0",
               "HF_DATASETS_OFFLINE": "0", "TRANSFORMERS_OFFLINE": "0", "NO_PROXY": "127.0.0.1,localhost",
               "no_proxy": "127.0.0.1,localhost", "HF_HUB_DISABLE_PROGRESS_BARS": "1"}
        if token is not None:
            env["HF_TOKEN"] = token
        if home is not None:
            env["HF_HOME"] = home
        return env

    # -- state -------------------------------------------------------------------------------------
    def new_sha(self, *parts) -> str:
        return hashlib.sha1(json.dumps([time.time_ns(), *map(str, parts)]).encode()).hexdigest()

    def repo(self, kind: str, repo_id: str, user: str | None, write: bool = False) -> Repo:
        repo = self.repos.get((kind, repo_id))
        visible = repo is not None and (not repo.private or user == repo.owner)
        if not visible or (write and user != repo.owner):
            if user is None:
                raise HubError(401, "Repository not found (or you need to log in)", "RepoNotFound")
            raise HubError(404, "Repository not found", "RepoNotFound")
        return repo

    def head(self, repo: Repo, revision: str) -> Commit:
        commit = repo.resolve(unquote(revision))
        if commit is None:
            raise HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return commit

    def files_at(self, kind: str, repo_id: str, revision: str = "main") -> dict[str, bytes]:
        """The files of a repo at a revision (for test assertions)."""
        repo = self.repos[(kind, repo_id)]
        return {path: blob.content for path, blob in self.head(repo, revision).files.items()}

    def commit(self, kind: str, repo_id: str, files: dict[str, bytes], title: str, branch: str = "main") -> str:
        """Commit `files` on `branch` as another writer would (for tests of concurrent pushes)."""
        with self.lock:
            repo = self.repos[(kind, repo_id)]
            head = repo.commits[repo.branches[branch]]
            commit = Commit(self.new_sha(repo_id, title), head.sha, title,
                            {**head.files, **{p: Blob(c, False) for p, c in files.items()}})
            repo.commits[commit.sha] = commit
            repo.branches[branch] = commit.sha
            return commit.sha

    def history(self, kind: str, repo_id: str, branch: str = "main") -> list[Commit]:
        repo = self.repos[(kind, repo_id)]
        out, sha = [], repo.branches.get(branch)
        while sha is not None:
            out.append(repo.commits[sha])
            sha = repo.commits[sha].parent
        return out


# -- YAML rules -------------------------------------------------------------------------------------
LIST_OR_STR = ("license", "language", "tags", "task_categories", "task_ids", "size_categories", "source_datasets",
               "pretty_name", "annotations_creators", "language_creators", "multilinguality")


def card_yaml_errors(content: str) -> list[str]:
    """What the Hub's YAML check would refuse in a README: front matter that does not parse, is not
    a mapping, or whose known fields have the wrong type."""
    import yaml

    if not content.startswith("---"):
        return []
    match = re.match(r"^---\s*\n(.*?)\n---\s*(\n|$)", content, re.S)
    if match is None:
        return ["the YAML front matter is not closed by a line '---'"]
    try:
        data = yaml.safe_load(match.group(1))
    except yaml.YAMLError as err:
        return [f"YAML does not parse: {err}"]
    if data is None:
        return []
    if not isinstance(data, dict):
        return ["the YAML front matter must be a mapping"]
    errors = []
    for key in LIST_OR_STR:
        value = data.get(key)
        if value is not None and not (isinstance(value, str) or (isinstance(value, list) and all(isinstance(v, str) for v in value))):
            errors.append(f'"{key}" must be a string or a list of strings')
    if "pretty_name" in data and not isinstance(data["pretty_name"], str):
        errors.append('"pretty_name" must be a string')
    configs = data.get("configs")
    if configs is not None:
        if not isinstance(configs, list) or not all(isinstance(c, dict) and isinstance(c.get("config_name"), str) for c in configs):
            errors.append('"configs" must be a list of mappings, each with a "config_name"')
    info = data.get("dataset_info")
    if info is not None and not isinstance(info, (dict, list)):
        errors.append('"dataset_info" must be a mapping or a list of mappings')
    return errors


# -- the handler ------------------------------------------------------------------------------------
class _Handler(BaseHTTPRequestHandler):
    server_hub: HubServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # quiet: the hub records requests itself
        pass

    # every verb goes through one dispatcher
    def do_GET(self):
        self._dispatch("GET")

    def do_HEAD(self):
        self._dispatch("HEAD")

    def do_POST(self):
        self._dispatch("POST")

    def do_PUT(self):
        self._dispatch("PUT")

    def do_DELETE(self):
        self._dispatch("DELETE")

    # -- plumbing
    def _body(self) -> bytes:
        """The request body, read once (at dispatch, so that an error answered early leaves the
        connection clean for the next request)."""
        if getattr(self, "_raw", None) is None:
            length = int(self.headers.get("Content-Length") or 0)
            self._raw = self.rfile.read(length) if length else b""
        return self._raw

    def _user(self) -> str | None:
        auth = self.headers.get("Authorization") or self.headers.get("authorization") or ""
        token = auth[7:].strip() if auth.lower().startswith("bearer ") else None
        if token is None:
            return None
        user = self.server_hub.tokens.get(token)
        if user is None:
            raise HubError(401, "Invalid credentials in Authorization header")
        return user

    def _drop(self) -> None:
        """Close the connection without answering, as a network failure does."""
        with self.server_hub.lock:
            self.server_hub.requests.append((self.command, self.path, 0))
        self.close_connection = True
        try:
            self.wfile.flush()
            self.connection.shutdown(2)
        except OSError:
            pass

    def _send(self, status: int, body: bytes = b"", headers: dict | None = None, content_type: str = "application/json"):
        if getattr(self, "_mute", False):  # the request was done; its answer is lost
            self._mute = False
            self._drop()
            return
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)
        hub = self.server_hub
        with hub.lock:
            hub.requests.append((self.command, self.path, status))
            if len(hub.requests) >= hub.max_requests:
                hub.stop()

    def _json(self, status: int, data, headers: dict | None = None):
        self._send(status, json.dumps(data).encode(), headers)

    def _dispatch(self, method: str):
        hub = self.server_hub
        path = urlsplit(self.path).path
        self._raw = None
        self._mute = False
        self._body()
        try:
            action = None
            with hub.lock:
                for i, fault in enumerate(hub.fail_next):
                    if re.search(fault[0], f"{method} {path}"):
                        if len(fault) > 2 and fault[2] > 0:
                            hub.fail_next[i] = (fault[0], fault[1], fault[2] - 1)
                            break
                        action = hub.fail_next.pop(i)[1]
                        break
            if isinstance(action, int):
                raise HubError(action, f"injected failure {action}")
            if action == "drop":
                self._drop()
                return
            if callable(action):
                action(hub)
            self._mute = action == "drop_after"
            handled = self._route(method, path)
            if not handled:
                self._json(501, {"error": f"the test Hub does not implement {method} {path}"})
        except HubError as err:
            headers = dict(err.headers)
            if err.code:
                headers["X-Error-Code"] = err.code
            headers["X-Error-Message"] = err.message
            self._json(err.status, {"error": err.message}, headers)
        except (BrokenPipeError, ConnectionResetError):
            pass

    # -- routes
    def _route(self, method: str, path: str) -> bool:
        parts = [unquote(p) for p in path.split("/")[1:]]
        hub = self.server_hub
        if method == "GET" and path == "/api/whoami-v2":
            user = self._user()
            if user is None:
                raise HubError(401, "Invalid user token.")
            self._json(200, {"type": "user", "name": user, "fullname": user, "orgs": [],
                             "auth": {"type": "access_token", "accessToken": {"displayName": "test", "role": "write"}}})
            return True
        if method == "POST" and path == "/api/repos/create":
            return self._create_repo()
        if method == "POST" and path == "/api/validate-yaml":
            data = json.loads(self._body() or b"{}")
            errors = card_yaml_errors(data.get("content", ""))
            self._json(400 if errors else 200, {"errors": [{"message": e} for e in errors], "warnings": []})
            return True
        if len(parts) >= 4 and parts[0] == "api" and parts[1] in ("models", "datasets"):
            kind = parts[1][:-1]
            repo_id = "/".join(parts[2:4])
            return self._repo_api(method, kind, repo_id, parts[4:])
        # LFS batch: /{datasets/}ns/name.git/info/lfs/objects/batch
        match = re.fullmatch(r"/(datasets/)?([^/]+)/([^/]+)\.git/info/lfs/objects/batch", path)
        if match and method == "POST":
            return self._lfs_batch("dataset" if match.group(1) else "model", f"{match.group(2)}/{match.group(3)}")
        match = re.fullmatch(r"/lfs-upload/([0-9a-f]{64})", path)
        if match and method == "PUT":
            data = self._body()
            if hashlib.sha256(data).hexdigest() != match.group(1):
                raise HubError(400, "the uploaded bytes do not match their sha256")
            with hub.lock:
                hub.lfs[match.group(1)] = data
            self._send(200)
            return True
        # resolve: /{datasets/}ns/name/resolve/rev/path...
        if method in ("GET", "HEAD"):
            kind, rest = ("dataset", parts[1:]) if parts and parts[0] == "datasets" else ("model", parts)
            if len(rest) >= 5 and rest[2] == "resolve":
                return self._resolve(kind, "/".join(rest[:2]), rest[3], "/".join(rest[4:]))
        return False

    def _create_repo(self) -> bool:
        hub = self.server_hub
        user = self._user()
        body = json.loads(self._body() or b"{}")
        if user is None:
            raise HubError(401, "You must be authenticated to create a repo")
        namespace = body.get("organization") or user
        if namespace != user:
            raise HubError(403, f"You cannot create a repo in {namespace!r}")
        kind = body.get("type") or "model"
        repo_id = f"{namespace}/{body['name']}"
        url = f"{hub.endpoint}/{'datasets/' if kind == 'dataset' else ''}{repo_id}"
        with hub.lock:
            if (kind, repo_id) in hub.repos:
                self._json(409, {"error": "You already created this repo", "url": url})
                return True
            repo = Repo(kind, repo_id, user, body.get("visibility") == "private")
            first = Commit(hub.new_sha(repo_id, "initial"), None, "initial commit", {".gitattributes": Blob(GITATTRIBUTES, False)})
            repo.commits[first.sha] = first
            repo.branches["main"] = first.sha
            hub.repos[(kind, repo_id)] = repo
        self._json(200, {"url": url, "name": repo_id, "id": repo_id})
        return True

    def _repo_api(self, method: str, kind: str, repo_id: str, rest: list[str]) -> bool:
        hub = self.server_hub
        user = self._user()
        if method == "GET" and (not rest or rest[0] == "revision"):
            repo = hub.repo(kind, repo_id, user)
            commit = hub.head(repo, rest[1] if len(rest) > 1 else "main")
            self._json(200, {"id": repo_id, "sha": commit.sha, "private": repo.private, "tags": [], "disabled": False,
                             "gated": False, "lastModified": "2026-01-01T00:00:00.000Z", "author": repo.owner,
                             "siblings": [{"rfilename": p} for p in sorted(commit.files)]})
            return True
        if method == "GET" and rest and rest[0] == "tree" and len(rest) >= 2:
            repo = hub.repo(kind, repo_id, user)
            commit = hub.head(repo, rest[1])
            query = parse_qs(urlsplit(self.path).query)
            self._json(200, self._tree(commit, "/".join(rest[2:]), query.get("recursive", ["false"])[0] in ("true", "True", "1")))
            return True
        if method == "POST" and rest and rest[0] == "paths-info" and len(rest) >= 2:
            repo = hub.repo(kind, repo_id, user)
            commit = hub.head(repo, rest[1])
            form = parse_qs(self._body().decode())
            entries = []
            for p in form.get("paths", []):
                if p in commit.files:
                    entries.append(commit.files[p].entry(p))
                elif any(f.startswith(p.rstrip("/") + "/") for f in commit.files):
                    entries.append({"type": "directory", "path": p, "oid": git_oid(p.encode())})
            self._json(200, entries)
            return True
        if method == "GET" and rest and rest[0] == "commits" and len(rest) == 2:  # one page, newest first
            repo = hub.repo(kind, repo_id, user)
            commit, out = hub.head(repo, rest[1]), []
            while commit is not None:
                out.append({"id": commit.sha, "title": commit.title, "message": commit.message,
                            "authors": [{"user": repo.owner}], "date": "2026-01-01T00:00:00.000Z"})
                commit = repo.commits.get(commit.parent) if commit.parent else None
            self._json(200, out)
            return True
        if method == "GET" and rest == ["refs"]:
            repo = hub.repo(kind, repo_id, user)
            self._json(200, {"branches": [{"name": b, "ref": f"refs/heads/{b}", "targetCommit": s} for b, s in repo.branches.items()],
                             "tags": [], "converts": []})
            return True
        if method == "POST" and rest and rest[0] == "preupload" and len(rest) >= 2:
            repo = hub.repo(kind, repo_id, user, write=True)
            hub.head(repo, rest[1])
            files = json.loads(self._body() or b"{}").get("files", [])
            out = []
            for f in files:
                sample = base64.b64decode(f.get("sample") or "")
                lfs = f["path"].endswith(LFS_SUFFIXES) or f.get("size", 0) > LFS_SIZE or b"\0" in sample
                out.append({"path": f["path"], "uploadMode": "lfs" if lfs else "regular", "shouldIgnore": False, "oid": None})
            self._json(200, {"files": out})
            return True
        if method == "POST" and rest and rest[0] == "commit" and len(rest) >= 2:
            return self._commit(kind, repo_id, user, rest[1])
        if method == "POST" and rest and rest[0] == "branch" and len(rest) >= 2:
            repo = hub.repo(kind, repo_id, user, write=True)
            body = json.loads(self._body() or b"{}")
            with hub.lock:
                if rest[1] in repo.branches:
                    raise HubError(409, f"Branch {rest[1]} already exists")
                start = hub.head(repo, body.get("startingPoint") or "main")
                repo.branches[rest[1]] = start.sha
            self._json(200, {})
            return True
        return False

    def _tree(self, commit: Commit, folder: str, recursive: bool) -> list[dict]:
        folder = folder.strip("/")
        prefix = f"{folder}/" if folder else ""
        inside = {p: b for p, b in commit.files.items() if p.startswith(prefix)}
        if folder and not inside:
            raise HubError(404, f"{folder} does not exist at this revision", "EntryNotFound")
        entries, folders = [], set()
        for path, blob in sorted(inside.items()):
            rel = path[len(prefix):]
            if "/" in rel and not recursive:
                folders.add(prefix + rel.split("/")[0])
                continue
            if recursive:
                bits = rel.split("/")[:-1]
                folders.update(prefix + "/".join(bits[:i + 1]) for i in range(len(bits)))
            entries.append(blob.entry(path))
        return [{"type": "directory", "path": f, "oid": git_oid(f.encode())} for f in sorted(folders)] + entries

    def _lfs_batch(self, kind: str, repo_id: str) -> bool:
        hub = self.server_hub
        user = self._user()
        hub.repo(kind, repo_id, user, write=True)
        body = json.loads(self._body() or b"{}")
        objects = []
        for obj in body.get("objects", []):
            oid, size = obj["oid"], obj["size"]
            entry = {"oid": oid, "size": size}
            if oid not in hub.lfs:
                entry["actions"] = {"upload": {"href": f"{hub.endpoint}/lfs-upload/{oid}"}}
            objects.append(entry)
        self._send(200, json.dumps({"transfer": "basic", "objects": objects}).encode(),
                   content_type="application/vnd.git-lfs+json")
        return True

    def _commit(self, kind: str, repo_id: str, user: str | None, revision: str) -> bool:
        hub = self.server_hub
        if user is None:
            raise HubError(401, "You must be authenticated to commit")
        repo = hub.repo(kind, repo_id, user, write=True)
        lines = [json.loads(line) for line in self._body().decode().splitlines() if line.strip()]
        if not lines or lines[0].get("key") != "header":
            raise HubError(400, "a commit starts with its header line")
        header = lines[0]["value"]
        with hub.lock:
            branch = unquote(revision)
            if branch not in repo.branches:
                raise HubError(404, f"Invalid rev id: {branch}", "RevisionNotFound")
            head = repo.commits[repo.branches[branch]]
            parent = header.get("parentCommit")
            if parent and not head.sha.startswith(parent):
                raise HubError(412, "A commit has happened since. Please refresh and try again.")
            files = dict(head.files)
            for line in lines[1:]:
                key, value = line.get("key"), line.get("value", {})
                if key == "file":
                    content = base64.b64decode(value["content"]) if value.get("encoding") == "base64" else value["content"].encode()
                    files[value["path"]] = Blob(content, False)
                elif key == "lfsFile":
                    if value["oid"] not in hub.lfs:
                        raise HubError(400, f"LFS object {value['oid']} of {value['path']} was never uploaded")
                    files[value["path"]] = Blob(hub.lfs[value["oid"]], True)
                elif key == "deletedFile":
                    if value["path"] not in files:
                        raise HubError(404, "A file with this name doesn't exist", "EntryNotFound")
                    del files[value["path"]]
                elif key == "deletedFolder":
                    prefix = value["path"].rstrip("/") + "/"
                    files = {p: b for p, b in files.items() if not p.startswith(prefix)}
                else:
                    raise HubError(400, f"unknown commit line {key!r}")
            for path, blob in files.items():
                if path in head.files and head.files[path] is blob:
                    continue
                for token in hub.tokens:
                    if token.encode() in blob.content:
                        raise HubError(400, f"Your push was rejected because it contains a secret (a user access token) in {path}")
            commit = Commit(hub.new_sha(repo_id, header.get("summary"), len(repo.commits)), head.sha,
                            header.get("summary") or "", files, header.get("description") or "")
            repo.commits[commit.sha] = commit
            repo.branches[branch] = commit.sha
        base = f"{hub.endpoint}/{'datasets/' if kind == 'dataset' else ''}{repo_id}"
        self._json(200, {"commitUrl": f"{base}/commit/{commit.sha}", "commitOid": commit.sha, "pullRequestUrl": None})
        return True

    def _resolve(self, kind: str, repo_id: str, revision: str, path: str) -> bool:
        hub = self.server_hub
        user = self._user()
        repo = hub.repo(kind, repo_id, user)
        commit = hub.head(repo, revision)
        blob = commit.files.get(path)
        if blob is None:
            raise HubError(404, "Entry not found", "EntryNotFound", {"X-Repo-Commit": commit.sha})
        headers = {"X-Repo-Commit": commit.sha, "ETag": f'"{blob.etag}"', "Accept-Ranges": "bytes"}
        if blob.lfs:
            headers["X-Linked-Etag"] = f'"{blob.sha256}"'
            headers["X-Linked-Size"] = str(len(blob.content))
        content = blob.content
        status = 200
        wanted = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range") or "")
        if wanted:
            start = int(wanted.group(1))
            end = int(wanted.group(2)) if wanted.group(2) else len(content) - 1
            if start >= len(content):
                self._send(416, b"", {"Content-Range": f"bytes */{len(content)}"}, "application/octet-stream")
                return True
            content, status = content[start:end + 1], 206
            headers["Content-Range"] = f"bytes {start}-{min(end, len(blob.content) - 1)}/{len(blob.content)}"
        self._send(status, content, headers, "application/octet-stream")
        return True


HubServer.handler = _Handler

__all__ = ["HubServer", "card_yaml_errors", "git_oid"]
