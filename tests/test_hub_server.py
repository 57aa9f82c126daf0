"""The Hub-protocol test server (tests/hub_server.py) against the real `huggingface_hub` and
`datasets` clients, run in a subprocess with HF_ENDPOINT set to it (the clients read it at import),
so that later tests of pushing to the Hub rest on a server that behaves as the Hub does. Loopback
only; the server stops by itself."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request

import pytest

from hub_server import HubServer, card_yaml_errors

TOKEN = "hf_testtoken_synth_datasets_0123456789"


def run_client(hub: HubServer, code: str, tmp_path, token: str | None = TOKEN) -> dict:
    """Run `code` in a fresh interpreter against `hub`; it prints one JSON line last, returned."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING"))}
    env.update(hub.client_env(token=token, home=str(tmp_path / "hf_home")))
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_push_and_load_back_a_dataset_through_the_real_clients(tmp_path):
    with HubServer(tokens={TOKEN: "tester"}) as hub:
        out = run_client(hub, """
            import json
            from datasets import Dataset, DatasetDict, load_dataset
            from huggingface_hub import DatasetCard, HfApi
            api = HfApi()
            rows = {"train": {"text": ["a", "b", "c"], "label": [0, 1, 0]}, "test": {"text": ["d"], "label": [1]}}
            DatasetDict({k: Dataset.from_dict(v) for k, v in rows.items()}).push_to_hub("tester/demo", private=True)
            first = api.repo_info("tester/demo", repo_type="dataset").sha
            back = load_dataset("tester/demo")
            card = DatasetCard.load("tester/demo")
            rows["train"]["text"][0] = "changed"
            DatasetDict({k: Dataset.from_dict(v) for k, v in rows.items()}).push_to_hub("tester/demo", private=True)
            again = load_dataset("tester/demo", split="train", download_mode="force_redownload")
            print(json.dumps({"rows": {k: v.to_dict() for k, v in back.items()}, "yaml": sorted(card.data.to_dict()),
                              "first": first, "second": api.repo_info("tester/demo", repo_type="dataset").sha,
                              "again": list(again["text"]), "whoami": api.whoami()["name"]}))
        """, tmp_path)
        assert out["rows"] == {"train": {"text": ["a", "b", "c"], "label": [0, 1, 0]}, "test": {"text": ["d"], "label": [1]}}
        assert out["yaml"] == ["configs", "dataset_info"] and out["whoami"] == "tester"
        assert out["again"] == ["changed", "b", "c"] and out["first"] != out["second"]
        assert len([r for r in hub.repos if r[1] == "tester/demo"]) == 1  # a second push is a commit, not a repo
        history = hub.history("dataset", "tester/demo")
        assert history[0].sha == out["second"] and out["first"] in [c.sha for c in history]
        files = hub.files_at("dataset", "tester/demo")
        assert {"README.md", ".gitattributes", "data/train-00000-of-00001.parquet"} <= set(files)
        assert files["data/train-00000-of-00001.parquet"].startswith(b"PAR1")
        statuses = {status for *_, status in hub.requests}
        assert 501 not in statuses  # every route the clients used is implemented


def test_private_repos_need_their_owners_token(tmp_path):
    with HubServer(tokens={TOKEN: "tester", "hf_other_user_token_0000000000": "other"}) as hub:
        run_client(hub, """
            from huggingface_hub import HfApi
            HfApi().create_repo("tester/secret-data", repo_type="dataset", private=True)
            print("{}")
        """, tmp_path)
        probe = """
            import json
            from huggingface_hub import HfApi
            from huggingface_hub.errors import RepositoryNotFoundError
            try:
                HfApi().repo_info("tester/secret-data", repo_type="dataset")
                print(json.dumps({"seen": True}))
            except RepositoryNotFoundError as err:
                print(json.dumps({"seen": False, "status": err.response.status_code}))
        """
        assert run_client(hub, probe, tmp_path, token=None) == {"seen": False, "status": 401}
        assert run_client(hub, probe, tmp_path, token="hf_other_user_token_0000000000") == {"seen": False, "status": 404}
        assert run_client(hub, probe, tmp_path) == {"seen": True}


def test_stale_parent_commit_gets_412_and_a_pushed_token_is_refused(tmp_path):
    with HubServer(tokens={TOKEN: "tester"}) as hub:
        out = run_client(hub, f"""
            import json
            from huggingface_hub import CommitOperationAdd, HfApi
            from huggingface_hub.errors import HfHubHTTPError
            api = HfApi()
            api.create_repo("tester/model", exist_ok=True)
            old = api.repo_info("tester/model").sha
            api.create_commit("tester/model", [CommitOperationAdd("a.txt", b"one")], commit_message="one", parent_commit=old)
            result = {{}}
            try:
                api.create_commit("tester/model", [CommitOperationAdd("b.txt", b"two")], commit_message="two", parent_commit=old)
            except HfHubHTTPError as err:
                result["stale"] = err.response.status_code
            try:
                api.create_commit("tester/model", [CommitOperationAdd("leak.txt", b"token={TOKEN}")], commit_message="leak")
            except HfHubHTTPError as err:
                result["secret"] = [err.response.status_code, "secret" in str(err)]
            try:
                api.upload_file(path_or_fileobj=b"---\\nlicense: [1, 2\\n---\\nbody", path_in_repo="README.md", repo_id="tester/model")
            except Exception as err:
                result["yaml"] = type(err).__name__
            print(json.dumps(result))
        """, tmp_path)
        assert out == {"stale": 412, "secret": [400, True], "yaml": "ValueError"}
        assert set(hub.files_at("model", "tester/model")) == {".gitattributes", "a.txt"}  # nothing else landed
        assert [c.title for c in hub.history("model", "tester/model")] == ["one", "initial commit"]


def test_unknown_routes_get_501_and_the_server_stops_by_itself():
    with HubServer(max_requests=2, lifetime=30) as hub:
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(f"{hub.endpoint}/api/spaces/x/y/discussions", timeout=5)
        assert err.value.code == 501
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(f"{hub.endpoint}/api/whoami-v2", timeout=5)  # 401 without a token: request 2
        time.sleep(0.5)
        with pytest.raises(OSError):
            urllib.request.urlopen(f"{hub.endpoint}/api/whoami-v2", timeout=2)
    assert hub.endpoint.startswith("http://127.0.0.1:")


def test_yaml_rules_parse_the_front_matter():
    assert card_yaml_errors("no front matter") == []
    assert card_yaml_errors("---\nlicense: mit\ntags: [synthetic]\n---\n# Card") == []
    assert card_yaml_errors("---\nlicense: [mit\n---\n") and "does not parse" in card_yaml_errors("---\nlicense: [mit\n---\n")[0]
    assert card_yaml_errors("---\n- a\n- b\n---\n") == ["the YAML front matter must be a mapping"]
    assert card_yaml_errors("---\ntags: [1, 2]\n---\n") == ['"tags" must be a string or a list of strings']
    assert card_yaml_errors("---\nconfigs: [{data_files: x}]\n---\n") == ['"configs" must be a list of mappings, each with a "config_name"']
    assert card_yaml_errors("---\nlicense: mit\n") == ["the YAML front matter is not closed by a line '---'"]
