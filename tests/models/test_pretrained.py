"""Real checkpoints: a locally built stand-in in Granite Speech 3.3's layout (chat template, <|audio|>
special token, GraniteSpeechForConditionalGeneration) goes through the same load / collate / loss /
sampling path; a missing checkpoint names the download command."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from speechrl.models.build import load, load_pretrained, save
from speechrl.models.tokenizer import AUDIO
from speechrl.training.data import collate, load_split
from speechrl.training.rollout import sample
from speechrl.training.sft import lm_loss

# Granite 3.x chat format: role markers around each turn, the generation prompt opens the assistant turn
GRANITE_TEMPLATE = (
    "{% for m in messages %}<|start_of_role|>{{ m['role'] }}<|end_of_role|>{{ m['content'] }}<|end_of_text|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|start_of_role|>assistant<|end_of_role|>{% endif %}"
)


@pytest.fixture(scope="module")
def standin(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    model, proc = load(tiny_model_dir)
    tok = proc.tokenizer
    tok.add_special_tokens({"additional_special_tokens": [AUDIO, "<|start_of_role|>", "<|end_of_role|>", "<|end_of_text|>"]})
    tok.chat_template = GRANITE_TEMPLATE
    model.resize_token_embeddings(len(tok))
    out = tmp_path_factory.mktemp("standin") / "granite-speech-standin"
    save(model, proc, out)
    return out


def test_chat_layout_loss_and_sampling(standin: Path, tiny_data) -> None:
    model, proc = load_pretrained(str(standin))
    assert proc.chat and type(model).__name__ == "GraniteSpeechForConditionalGeneration"
    ids = proc.prompt_ids("What is said?", 3)
    text = proc.tokenizer.decode(ids)
    assert text.startswith("<|start_of_role|>user<|end_of_role|>" + AUDIO * 3) and text.endswith("<|start_of_role|>assistant<|end_of_role|>")
    train = load_split(tiny_data["sqa"], "train", proc)[:3]
    batch = collate(proc, train, with_answers=True)
    loss, n = lm_loss(model, batch)
    assert torch.isfinite(loss) and n > 0
    torch.manual_seed(0)
    r = sample(model.eval(), proc, train[:2], 2, max_new_tokens=4)
    assert r.completion_ids.shape[0] == 4


def test_missing_checkpoint_names_the_download(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # as the CLI sets it: never download
    with pytest.raises(FileNotFoundError, match=r"huggingface-cli download ibm-granite/granite-speech-3.3-2b"):
        load_pretrained("ibm-granite/granite-speech-3.3-2b")
    with pytest.raises(FileNotFoundError, match="model.pretrained="):
        load_pretrained(str(tmp_path / "nowhere"))


def test_template_without_audio_token_is_an_error(standin: Path, tmp_path: Path) -> None:
    copy = tmp_path / "broken"
    shutil.copytree(standin, copy)
    model, proc = load(copy)
    proc.tokenizer.chat_template = "{% for m in messages %}{{ m['content'] | replace('<|audio|>', '') }}{% endfor %}"
    with pytest.raises(ValueError, match="audio tokens"):
        proc.prompt_ids("hi", 2)
