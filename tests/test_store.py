"""The content-addressed store (s2l.engine.store) and content hashes (s2l.engine.hashing), on real files and processes."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import shutil
from pathlib import Path

import pytest

from s2l.engine.hashing import content_sha256, remembered_sha256, stat_stamp
from s2l.engine.store import MANIFEST, Store

KEY = "ab" + "0" * 62


def make_outputs(root: Path, text: str = "hello") -> dict[str, Path]:
    (root / "adapter").mkdir(parents=True, exist_ok=True)
    (root / "adapter" / "weights.bin").write_bytes(text.encode() * 1000)
    (root / "adapter" / "config.json").write_text('{"r": 16}')
    (root / "report.json").write_text(json.dumps({"text": text}))
    return {"adapter": root / "adapter", "report.json": root / "report.json"}


def manifest_for(outputs: dict[str, Path], plan_key: str = "p" * 64) -> dict:
    return {"key": plan_key, "outputs": {role: {"path": str(p), "sha256": content_sha256(p)}
                                         for role, p in outputs.items()}}


def test_folder_hash_follows_names_and_bytes_not_mtimes(tmp_path):
    outputs = make_outputs(tmp_path / "a")
    first = content_sha256(outputs["adapter"])
    expected = hashlib.sha256()
    for name in ("config.json", "weights.bin"):
        data = (outputs["adapter"] / name).read_bytes()
        expected.update(name.encode() + b"\0" + hashlib.sha256(data).hexdigest().encode())
    assert first == expected.hexdigest()
    (outputs["adapter"] / "config.json").touch()
    assert content_sha256(outputs["adapter"]) == first
    (outputs["adapter"] / ".hidden").write_text("editor state")
    assert content_sha256(outputs["adapter"]) == first
    (outputs["adapter"] / "config.json").write_text('{"r": 8}')
    assert content_sha256(outputs["adapter"]) != first


def test_remembered_hash_is_redone_when_a_file_changes(tmp_path):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "model.safetensors").write_bytes(b"weights")
    (folder / "chat_template.jinja").write_text("{{ messages }}")
    memo = tmp_path / "memo.json"
    before = remembered_sha256(folder, memo)
    assert before == content_sha256(folder)
    (folder / "chat_template.jinja").write_text("{{ messages | reverse }}")
    after = remembered_sha256(folder, memo)
    assert after != before and after == content_sha256(folder)
    assert json.loads(memo.read_text())["stamp"][1:] == stat_stamp(folder)


def test_save_then_restore_gives_back_the_same_bytes(tmp_path):
    store = Store(tmp_path / "store")
    outputs = make_outputs(tmp_path / "build")
    sums = {role: content_sha256(path) for role, path in outputs.items()}
    store.save("train", KEY, outputs, manifest_for(outputs))
    assert store.has("train", KEY) and store.has_plan("train", "p" * 64)
    for path in outputs.values():
        path.unlink() if path.is_file() else shutil.rmtree(path)
    assert store.restore("train", KEY, outputs) is True
    assert {role: content_sha256(path) for role, path in outputs.items()} == sums


def test_a_corrupted_entry_is_discarded_not_restored(tmp_path, capsys):
    store = Store(tmp_path / "store")
    outputs = make_outputs(tmp_path / "build")
    store.save("train", KEY, outputs, manifest_for(outputs))
    stored = store.entry("train", KEY) / "adapter" / "weights.bin"
    stored.write_bytes(stored.read_bytes()[:100])  # truncated, as by a full disk
    assert store.restore("train", KEY, outputs) is False
    assert "damaged" in capsys.readouterr().err
    assert not store.has("train", KEY)
    assert not outputs["adapter"].exists()  # nothing half-restored is left for the build to trust


def test_an_entry_missing_a_file_is_discarded(tmp_path):
    store = Store(tmp_path / "store")
    outputs = make_outputs(tmp_path / "build")
    store.save("train", KEY, outputs, manifest_for(outputs))
    (store.entry("train", KEY) / "report.json").unlink()
    assert store.restore("train", KEY, outputs) is False
    assert not store.has("train", KEY)


def test_save_keeps_an_existing_entry_unless_replacing(tmp_path):
    store = Store(tmp_path / "store")
    first = make_outputs(tmp_path / "first", "one")
    second = make_outputs(tmp_path / "second", "two")
    store.save("train", KEY, first, manifest_for(first))
    store.save("train", KEY, second, manifest_for(second))
    entry = store.entry("train", KEY)
    assert json.loads((entry / "report.json").read_text()) == {"text": "one"}
    store.save("train", KEY, second, manifest_for(second), replace=True)
    assert json.loads((entry / "report.json").read_text()) == {"text": "two"}
    assert sorted(p.name for p in entry.parent.iterdir()) == [KEY]  # no staging or retired folders left


def store_concurrently(root: str, build: str, text: str, replace: bool, start) -> None:
    outputs = make_outputs(Path(build), text)
    start.wait()
    Store(Path(root)).save("train", KEY, outputs, manifest_for(outputs), replace=replace)


@pytest.mark.parametrize("replace", [False, True])
def test_two_jobs_storing_one_key_at_once_leave_one_complete_entry(tmp_path, replace):
    root = tmp_path / "store"
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(4)
    jobs = [context.Process(target=store_concurrently, args=(str(root), str(tmp_path / f"b{i}"), "same", replace, start))
            for i in range(4)]
    for job in jobs:
        job.start()
    for job in jobs:
        job.join(timeout=120)
        assert job.exitcode == 0
    store = Store(root)
    entry = store.entry("train", KEY)
    assert sorted(p.name for p in entry.parent.iterdir()) == [KEY]
    assert sorted(p.name for p in entry.iterdir()) == sorted(["adapter", "report.json", MANIFEST])
    target = make_outputs(tmp_path / "restored", "other")
    assert store.restore("train", KEY, target) is True
    assert json.loads(target["report.json"].read_text()) == {"text": "same"}
