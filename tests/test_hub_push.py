"""Publishing (synth_datasets/hub.py, `synth-datasets push`) over real HTTP: the real `datasets` and
`huggingface_hub` clients, in a subprocess whose HF_ENDPOINT is the Hub-protocol server of
tests/hub_server.py on 127.0.0.1; then the data, card and student read back through that server.
Failure paths: a dropped connection, a lost answer, a stale parent commit, a push that keeps failing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from datasets import load_dataset

from hub_server import HubServer, card_yaml_errors
from synth_datasets import cli
from synth_datasets.pipeline import run_recipe
from synth_datasets.recipe import load_recipe
from test_compare import DATA, write_recipe
from test_hub_server import TOKEN, run_client


@pytest.fixture(autouse=True)
def own_datasets_cache(tmp_path, monkeypatch):
    import datasets

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-cache")


def make_dataset(tmp_path, compare: bool = False, **task) -> Path:
    """A dataset folder written by `generate` (fake engine), with compare's results when asked."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = write_recipe(tmp_path)
    data = yaml.safe_load(path.read_text())
    data["seeds"]["source_dataset"] = "PolyAI/banking77"
    data["task"].update(task)
    path.write_text(yaml.safe_dump(data))
    folder, _ = run_recipe(load_recipe(path))
    if compare:
        assert cli.main(["compare", str(path)]) == 0
    return folder


def push(hub: HubServer, tmp_path, *args: str, token: str | None = TOKEN, **extra_env: str) -> subprocess.CompletedProcess:
    """`synth-datasets push ...` in a fresh interpreter pointed at `hub`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING"))}
    env.update(hub.client_env(token=token, home=str(tmp_path / "hf_home")), **extra_env)
    return subprocess.run([sys.executable, "-m", "synth_datasets.cli", "push", *args], env=env, capture_output=True,
                          text=True, timeout=600)


CARD = "Card, provenance and recipe (synth-datasets)"


def data_title(folder: Path) -> str:
    return f"Upload {json.loads((folder / 'provenance.json').read_text())['name']} (synth-datasets)"


def titles(hub: HubServer, repo_id: str, branch: str = "main", kind: str = "dataset") -> list[str]:
    return [c.title for c in hub.history(kind, repo_id, branch)]


READ_BACK = """
    import json
    from datasets import load_dataset
    from huggingface_hub import DatasetCard, HfApi, hf_hub_download
    ds = load_dataset("{repo}", split="train"{revision})
    card = DatasetCard.load("{repo}") if not "{revision}" else \
        DatasetCard.load(hf_hub_download("{repo}", "README.md", repo_type="dataset"{revision}))
    print(json.dumps({{"text": list(ds["text"]), "label": [ds.features["label"].int2str(v) if hasattr(ds.features["label"], "int2str")
                                                    else v for v in list(ds["label"])],
                      "data": card.data.to_dict(), "card": card.text,
                      "private": HfApi().repo_info("{repo}", repo_type="dataset").private}}))
"""


def read_back(hub, tmp_path, repo: str, revision: str | None = None) -> dict:
    rev = f", revision={revision!r}" if revision else ""
    return run_client(hub, READ_BACK.format(repo=repo, revision=rev), tmp_path)


def test_push_a_dataset_with_its_card_and_load_it_back(fake_engine, tmp_path):
    folder = make_dataset(tmp_path, compare=True)
    local = load_dataset(str(folder), split="train")
    with HubServer(tokens={TOKEN: "tester"}) as hub:
        proc = push(hub, tmp_path, str(folder), "tester/banking-synthetic", "--private")
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert "pushed" in proc.stdout and "tester/banking-synthetic" in proc.stdout
        assert titles(hub, "tester/banking-synthetic") == [CARD, data_title(folder), "initial commit"]
        back = read_back(hub, tmp_path, "tester/banking-synthetic")
        assert back["text"] == list(local["text"]) and back["label"] == list(local["label"]) and back["private"] is True
        data = back["data"]
        # datasets' own YAML kept (configs, dataset_info with features and split sizes), ours added
        assert data["configs"][0]["data_files"][0]["path"].startswith("data/train-")
        assert {"text", "label", "row_id"} <= {f["name"] for f in data["dataset_info"]["features"]}
        assert data["dataset_info"]["splits"][0]["num_examples"] == len(local)
        assert "synthetic" in data["tags"] and data["source_datasets"] == ["PolyAI/banking77"]
        assert data["task_categories"] == ["text-classification"] and data["size_categories"] == "n<1K"
        card = back["card"]
        assert 'load_dataset("tester/banking-synthetic")' in card and "synth-datasets generate recipe.yaml" in card
        assert "## Measured contribution" in card and "two-stage" in card and "| model revision |" in card
        files = hub.files_at("dataset", "tester/banking-synthetic")
        assert {"provenance.json", "recipe.yaml", "compare/compare.json", "compare/compare.png", "README.md"} <= set(files)
        assert not card_yaml_errors(files["README.md"].decode())
        for path, content in files.items():  # no local path travels: not the test's folder, the data's, the home's
            for where in (tmp_path, DATA, Path.home(), Path.cwd()):
                assert str(where).encode() + b"/" not in content, (path, where)
        assert "…/banking77/train.csv" in files["provenance.json"].decode()  # named, not located
        # the recipe travels; its seed file (here in a folder that shares only "/" with the output) is named
        recipe = yaml.safe_load(files["recipe.yaml"])
        assert recipe["output"]["dir"] == "." and recipe["seeds"]["path"] == "…/banking77/train.csv"
        assert load_recipe(folder / "recipe.yaml").seeds.path == recipe["seeds"]["path"]
        assert 501 not in {status for *_, status in hub.requests}

        # a second push of changed data: new commits in the same repo, the new rows load back
        changed = make_dataset(tmp_path / "again", balance_to=12)
        assert push(hub, tmp_path, str(changed), "tester/banking-synthetic").returncode == 0
        assert len([key for key in hub.repos if key[1] == "tester/banking-synthetic"]) == 1
        assert len(titles(hub, "tester/banking-synthetic")) == 5
        again = read_back(hub, tmp_path, "tester/banking-synthetic")
        assert len(again["text"]) == len(load_dataset(str(changed), split="train")) != len(local)

        # a branch: main stays as it was
        main_head = hub.history("dataset", "tester/banking-synthetic")[0].sha
        proc = push(hub, tmp_path, str(folder), "tester/banking-synthetic", "--revision", "v1")
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert hub.history("dataset", "tester/banking-synthetic")[0].sha == main_head
        on_branch = read_back(hub, tmp_path, "tester/banking-synthetic", revision="v1")
        assert on_branch["text"] == list(local["text"]) and 'revision="v1"' in on_branch["card"]


def test_recipe_paths_travel_relative_to_the_copy_or_named(tmp_path):
    from synth_datasets.hub import portable_path, scrub_paths

    project = tmp_path / "project"
    assert portable_path("../data/seeds.csv", project / "recipes", project / "outputs" / "x") == "../../data/seeds.csv"
    assert portable_path("/elsewhere/corpus/train.csv", project, project / "out") == "…/corpus/train.csv"
    home = str(Path.home())
    assert scrub_paths(f"seeds at {home}/work/data/seeds.csv, see https://huggingface.co/datasets/a/b") == \
        "seeds at …/data/seeds.csv, see https://huggingface.co/datasets/a/b"
    assert scrub_paths("../../shared/x.csv k=50/100 groups.mit.edu/sls/x") == "../../shared/x.csv k=50/100 groups.mit.edu/sls/x"
    assert scrub_paths(scrub_paths("/a/b/c.txt")) == "…/b/c.txt"


def test_a_dropped_connection_and_a_lost_answer_end_in_one_consistent_commit_each(fake_engine, tmp_path):
    folder = make_dataset(tmp_path)
    with HubServer(tokens={TOKEN: "tester"}) as hub:
        hub.fail_next += [
            (r"POST /api/datasets/tester/d/commit/main", "drop"),  # the data's commit: no answer at all
            (r"POST /api/datasets/tester/d/commit/main", "drop_after"),  # its retry lands; the answer is lost
            (r"POST /api/datasets/tester/d/commit/main", "drop_after"),  # the card's commit lands; the answer is lost
        ]
        proc = push(hub, tmp_path, str(folder), "tester/d")
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert not hub.fail_next  # every fault happened
        assert [status for method, path, status in hub.requests if "/commit/" in path] == [0, 0, 0]
        # data once, card once: the retry saw that its commit had landed
        assert titles(hub, "tester/d") == [CARD, data_title(folder), "initial commit"]
        assert "retrying" in proc.stderr
        assert read_back(hub, tmp_path, "tester/d")["text"] == list(load_dataset(str(folder), split="train")["text"])


def test_a_stale_parent_is_retried_from_the_new_head(fake_engine, tmp_path):
    folder = make_dataset(tmp_path)
    with HubServer(tokens={TOKEN: "tester"}) as hub:
        # someone else commits between our data commit and our card commit
        hub.fail_next.append((r"POST /api/datasets/tester/d/commit/main",
                              lambda h: h.commit("dataset", "tester/d", {"NOTES.md": b"a colleague's notes"}, "notes"), 1))
        proc = push(hub, tmp_path, str(folder), "tester/d")
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert 412 in [status for *_, status in hub.requests]
        history = titles(hub, "tester/d")
        assert history == [CARD, "notes", data_title(folder), "initial commit"]
        files = hub.files_at("dataset", "tester/d")
        assert files["NOTES.md"] == b"a colleague's notes" and "provenance.json" in files  # nothing of theirs lost


def test_a_push_that_keeps_failing_says_what_landed_and_a_rerun_finishes_it(fake_engine, tmp_path):
    folder = make_dataset(tmp_path)
    with HubServer(tokens={TOKEN: "tester"}) as hub:
        hub.fail_next += [(r"POST /api/datasets/tester/d/commit/main", 412, 1)] + \
            [(r"POST /api/datasets/tester/d/commit/main", 412)] * 2
        proc = push(hub, tmp_path, str(folder), "tester/d")
        assert proc.returncode == 1
        assert "The data landed in tester/d@main" in proc.stderr and "synth-datasets push" in proc.stderr
        assert "Traceback" not in proc.stderr
        assert "provenance.json" not in hub.files_at("dataset", "tester/d")
        assert push(hub, tmp_path, str(folder), "tester/d").returncode == 0
        assert "provenance.json" in hub.files_at("dataset", "tester/d")


def test_bad_pushes_get_clear_errors(fake_engine, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert cli.main(["push", str(tmp_path / "empty"), "tester/x"]) == 2
    assert "holds no dataset written by synth-datasets" in capsys.readouterr().err
    student = tmp_path / "student"
    student.mkdir()
    (student / "results.json").write_text("{}")
    (student / "training_args.bin").write_bytes(b"pickle")
    assert cli.main(["push", str(student), "tester/x"]) == 2
    assert "(training_args.bin); a pickled file is never pushed" in capsys.readouterr().err
    folder = make_dataset(tmp_path)
    with HubServer(tokens={TOKEN: "tester"}) as hub:  # no token: a clear error, no traceback, nothing created
        proc = push(hub, tmp_path, str(folder), "tester/x", token=None)
        assert proc.returncode == 1 and "Traceback" not in proc.stderr and "401" in proc.stderr
        assert not hub.repos
        assert push(hub, tmp_path, str(folder), "tester/public").returncode == 0  # public, then asked for private
        proc = push(hub, tmp_path, str(folder), "tester/public", "--private")
        assert proc.returncode == 1 and "exists and is public" in proc.stderr
        assert len(titles(hub, "tester/public")) == 3  # nothing more was pushed into it


SENTINEL = "hf_SENTINELtokenNEVERwritten0123456789ab"


def test_the_token_is_never_written_to_a_file_or_a_log(fake_engine, tmp_path, monkeypatch, caplog, capfd):
    """A sentinel token in HF_TOKEN through generate, compare, train and push (dataset and student):
    it is in no file any of them wrote, in no log record, in no output, and the Hub (which refuses a
    commit holding a token, as the real one's secret scanning does) took every commit."""
    import logging

    from synth_datasets.students.script import main as train

    monkeypatch.setenv("HF_TOKEN", SENTINEL)
    caplog.set_level(logging.DEBUG)
    folder = make_dataset(tmp_path, compare=True)
    data = Path(__file__).resolve().parents[2] / "shared" / "data" / "banking77"
    train(["--synthetic_data", str(folder), "--real_data", str(data / "train.csv"), "--real_per_label", "2",
           "--test_data", str(data / "test.csv"), "--real_label_column", "category", "--output_dir", str(tmp_path / "student"),
           "--labels", "card_arrival", "card_linking", "--seed", "0"])
    with HubServer(tokens={SENTINEL: "tester"}) as hub:
        outputs = []
        for args in ([str(folder), "tester/data"], [str(tmp_path / "student"), "tester/student", "--dataset-id", "tester/data"]):
            proc = push(hub, tmp_path, *args, token=SENTINEL, SYNTH_DATASETS_LOG_LEVEL="DEBUG")
            assert proc.returncode == 0, proc.stderr[-3000:]
            outputs += [proc.stdout, proc.stderr]
        assert any("DEBUG" in o for o in outputs)  # the logs were on, at their most talkative
        pushed = {**hub.files_at("dataset", "tester/data"), **hub.files_at("model", "tester/student")}
        assert "README.md" in hub.files_at("model", "tester/student") and "provenance.json" in pushed
    captured = capfd.readouterr()
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(written) > 20
    leaks = [str(p) for p in written if SENTINEL.encode() in p.read_bytes()]
    leaks += [r.getMessage() for r in caplog.records if SENTINEL in r.getMessage()]
    leaks += [o for o in outputs + [captured.out, captured.err] if SENTINEL in o]
    leaks += [path for path, content in pushed.items() if SENTINEL.encode() in content]
    assert leaks == []


@pytest.mark.slow
def test_push_a_trained_lm_student_and_load_it_with_from_pretrained(tmp_path):
    """scripts/train_student.py --push_to_hub (TRL's flags): real LoRA steps, then the adapter loads
    from the Hub with PEFT's from_pretrained, weights equal to the local ones, card linking the data."""
    from test_train_script import DATA, LABELS

    from synth_datasets.card import save_hub_layout
    from datasets import Dataset, DatasetDict

    real = Dataset.from_csv(str(DATA / "train.csv"))
    rows = [(t, c) for t, c in zip(real["text"], real["category"]) if c in LABELS][:24]
    save_hub_layout(DatasetDict(train=Dataset.from_dict({"text": [t for t, _ in rows], "label": [c for _, c in rows]})),
                    tmp_path / "synthetic", {"name": "fixture", "task": "classification"})
    with HubServer(tokens={TOKEN: "tester"}) as hub:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING"))}
        env.update(hub.client_env(token=TOKEN, home=str(tmp_path / "hf_home")))
        proc = subprocess.run([sys.executable, "scripts/train_student.py", "--student", "lm",
                               "--synthetic_data", str(tmp_path / "synthetic"), "--labels", *LABELS,
                               "--output_dir", str(tmp_path / "student"), "--max_steps", "2",
                               "--per_device_train_batch_size", "4", "--max_length", "64", "--seed", "0",
                               "--save_steps", "1", "--push_to_hub", "--hub_model_id", "tester/student",
                               "--hub_token", TOKEN, "--dataset_id", "tester/banking-synthetic"],
                              env=env, capture_output=True, text=True, timeout=900)
        assert proc.returncode == 0, proc.stderr[-3000:]
        files = hub.files_at("model", "tester/student")
        assert {"adapter_model.safetensors", "adapter_config.json", "README.md", "results.json"} <= set(files)
        assert not [p for p in files if p.endswith((".bin", ".pt", ".pkl"))]
        # the Trainer pushed nothing of its own, and its checkpoints (pickled arguments) hold no token
        assert titles(hub, "tester/student", kind="model") == ["Upload student (synth-datasets)", "initial commit"]
        checkpoints = list((tmp_path / "student-trainer").rglob("training_args.bin"))
        assert checkpoints and not [p for p in (tmp_path / "student-trainer").rglob("*")
                                    if p.is_file() and TOKEN.encode() in p.read_bytes()]
        out = run_client(hub, f"""
            import json
            import torch
            from huggingface_hub import ModelCard, hf_hub_download
            from peft import PeftModel
            from safetensors.torch import load_file
            from transformers import AutoModelForCausalLM
            from synth_datasets.models import default_model_dir
            base = AutoModelForCausalLM.from_pretrained(str(default_model_dir()))
            model = PeftModel.from_pretrained(base, "tester/student")
            local = load_file({str(tmp_path / "student" / "adapter_model.safetensors")!r})
            loaded = {{k: v for k, v in model.state_dict().items() if "lora_" in k}}
            same = len(local) == len(loaded) and all(torch.equal(v, loaded[k.replace(".weight", ".default.weight")]) for k, v in local.items())
            card = ModelCard.load("tester/student")
            config = json.loads(open(hf_hub_download("tester/student", "adapter_config.json")).read())
            print(json.dumps({{"same": same, "datasets": card.data.to_dict().get("datasets"), "text": card.text,
                              "base": config["base_model_name_or_path"]}}))
        """, tmp_path)
        assert out["same"] is True and out["datasets"] == ["tester/banking-synthetic"]
        assert out["base"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
        assert "datasets/tester/banking-synthetic" in out["text"] and str(tmp_path) not in out["text"]
        assert 'PeftModel.from_pretrained(base, "tester/student")' in out["text"]


def test_instruction_and_extraction_datasets_push_and_load_back_with_their_cards(fake_engine, tmp_path, monkeypatch):
    """Every task kind: nested columns (messages, entities, tokens and tags) come back as written,
    and each kind's card (its own template) parses and passes the Hub's YAML rules."""
    import test_extraction as ex
    import test_instruction as ins

    monkeypatch.setattr(fake_engine, "completer", staticmethod(ins.list_completer))
    monkeypatch.setattr(fake_engine, "responder", staticmethod(ins.answer_responder))
    (tmp_path / "si").mkdir()
    instruction, _ = run_recipe(load_recipe(ins.write_recipe(tmp_path / "si")))
    monkeypatch.setattr(fake_engine, "completer", staticmethod(ex.query_completer))
    (tmp_path / "mit").mkdir()
    extraction, _ = run_recipe(load_recipe(ex.write_recipe(tmp_path / "mit")))
    with HubServer(tokens={TOKEN: "tester"}) as hub:
        for folder, repo, kind in ((instruction, "tester/si", "instruction"), (extraction, "tester/mit", "extraction")):
            proc = push(hub, tmp_path, str(folder), repo)
            assert proc.returncode == 0, proc.stderr[-3000:]
            out = run_client(hub, f"""
                import json
                from datasets import load_dataset
                from huggingface_hub import DatasetCard
                ds = load_dataset("{repo}", split="train")
                print(json.dumps({{"rows": ds.to_list(), "card": DatasetCard.load("{repo}").text}}, default=str))
            """, tmp_path)
            local = json.loads(json.dumps(load_dataset(str(folder), split="train").to_list(), default=str))
            assert out["rows"] == local and len(local) > 0
            readme = hub.files_at("dataset", repo)["README.md"].decode()
            assert not card_yaml_errors(readme) and f'load_dataset("{repo}")' in out["card"]
            assert json.loads(hub.files_at("dataset", repo)["provenance.json"])["task"] == kind
        assert "tokens" in local[0] and "entities" in local[0]  # the extraction rows, last in the loop


def test_generate_and_compare_publish_with_push_to_hub(tmp_path):
    """`generate --push-to-hub` and `compare --push-to-hub`, the CLI in a subprocess (its engine the
    tests' fake one): the first push carries the data, the second the card with the measured
    contribution, in the same repo."""
    recipe = write_recipe(tmp_path)
    bootstrap = ("import sys; sys.path.insert(0, 'tests'); import conftest; "
                 "from synth_datasets.cli import main; sys.exit(main(sys.argv[1:]))")
    with HubServer(tokens={TOKEN: "tester"}) as hub:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGING"))}
        env.update(hub.client_env(token=TOKEN, home=str(tmp_path / "hf_home")))
        for command in ("generate", "compare"):
            proc = subprocess.run([sys.executable, "-c", bootstrap, command, str(recipe), "--push-to-hub", "tester/gen",
                                   "--private"], env=env, capture_output=True, text=True, timeout=600)
            assert proc.returncode == 0, proc.stderr[-3000:]
            assert "pushed" in proc.stdout
        assert len(titles(hub, "tester/gen")) == 5 and hub.repos[("dataset", "tester/gen")].private
        files = hub.files_at("dataset", "tester/gen")
        assert "## Measured contribution" in files["README.md"].decode() and "compare/compare.md" in files
        assert "Not measured yet" in hub.history("dataset", "tester/gen")[2].files["README.md"].content.decode()


@pytest.mark.skipif(not os.environ.get("SYNTH_DATASETS_HUB_TEST_REPO") or not os.environ.get("HF_TOKEN"),
                    reason="the real-Hub test needs HF_TOKEN, the network, and SYNTH_DATASETS_HUB_TEST_REPO "
                           "(user/name of a repo it may overwrite); CI has neither token nor network")
def test_push_to_the_real_hub(fake_engine, tmp_path):
    """The same push against huggingface.co, private, then read back; the repo is left for inspection."""
    folder = make_dataset(tmp_path)
    repo = os.environ["SYNTH_DATASETS_HUB_TEST_REPO"]
    env = {k: v for k, v in os.environ.items() if k != "HF_ENDPOINT"}
    proc = subprocess.run([sys.executable, "-m", "synth_datasets.cli", "push", str(folder), repo, "--private"],
                          env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    back = load_dataset(repo, split="train", download_mode="force_redownload", token=os.environ["HF_TOKEN"])
    assert list(back["text"]) == list(load_dataset(str(folder), split="train")["text"])
