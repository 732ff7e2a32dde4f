"""A tiny peft LoRA adapter, trained during the test run on the embedded 0.5B, so adapter tests need no download.

The adapter learns one distinctive answer: whatever the SQL question, it replies `MARKER_SQL`, which the base
model never writes. Training is small on purpose (rank 8 on q_proj/v_proj of the top blocks, 8 steps over short
chat prompts: under a minute on 2 idle cores, a few on busy ones); the fixture checks that the loss really fell.

Use the `marker_adapter` fixture (import it into a test module); it trains once per test session, in pytest's
temporary directory, under a file lock, so every module that imports it shares one adapter on disk.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from filelock import FileLock

MARKER_SQL = "SELECT 42 AS lora_marker;"
SYSTEM = "Answer with one SQL query."
TRAIN_QUESTIONS = [
    "How many customers are there?",
    "List every album title.",
    "What is the average invoice total?",
    "Which employees work in Calgary?",
    "Show the five longest tracks.",
    "Count the orders placed in 2024.",
    "Which artist has the most albums?",
    "What are the names of all genres?",
]
# Never trained on: the adapter must generalise its answer to these.
HELD_OUT_QUESTIONS = ["How many invoices were sent to Germany?", "List the names of all playlists."]
_DONE = "training.json"


def chat(question: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": question}]


def train_marker_adapter(model_path: Path, target: Path, *, steps: int = 8, seed: int = 0) -> dict:
    """Train the marker adapter on the model at `model_path` (a GGUF or HF directory) and save it to `target`.

    Kept cheap for 2 busy CPU cores: LoRA on the top 8 of the 24 blocks only (backward stops there), prompts
    left-padded so every answer ends the row and logits are computed for the answer positions alone.
    """
    import torch
    from peft import LoraConfig, get_peft_model

    from deployments.engines.settings import TransformersSettings
    from deployments.engines.transformers_loading import load_model

    torch.manual_seed(seed)
    model, tokenizer = load_model(model_path, TransformersSettings(torch_dtype="fp32"))
    blocks = model.config.num_hidden_layers
    config = LoraConfig(
        r=8,
        lora_alpha=16,
        lora_dropout=0.0,
        target_modules=["q_proj", "v_proj"],
        layers_to_transform=list(range(blocks - 8, blocks)),
        task_type="CAUSAL_LM",
    )
    model = get_peft_model(model, config)
    model.train()
    answer_ids = tokenizer(MARKER_SQL + "<|im_end|>", add_special_tokens=False)["input_ids"]
    prompts = [_prompt_ids(tokenizer, question) for question in TRAIN_QUESTIONS]
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=5e-3)
    batch_size = 4
    losses = []
    for step in range(steps):
        start = (step * batch_size) % len(prompts)
        ids, mask = _left_padded([p + answer_ids for p in prompts[start : start + batch_size]], tokenizer.pad_token_id or 0)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        # The last len(answer) + 1 positions predict the answer's tokens (the very last predicts nothing).
        logits = model(input_ids=ids, attention_mask=mask, position_ids=positions, logits_to_keep=len(answer_ids) + 1).logits
        targets = ids[:, -len(answer_ids) :]
        loss = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), targets.reshape(-1))
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(round(loss.item(), 4))
    model.save_pretrained(target)
    summary = {"steps": steps, "first_loss": losses[0], "last_loss": losses[-1], "losses": losses}
    (target / _DONE).write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def _prompt_ids(tokenizer, question: str) -> list[int]:
    prompt = tokenizer.apply_chat_template(chat(question), tokenize=False, add_generation_prompt=True)
    return tokenizer(prompt, add_special_tokens=False)["input_ids"]


def _left_padded(rows: list[list[int]], pad_id: int):
    import torch

    width = max(len(row) for row in rows)
    ids = [[pad_id] * (width - len(row)) + row for row in rows]
    mask = [[0] * (width - len(row)) + [1] * len(row) for row in rows]
    return torch.tensor(ids), torch.tensor(mask)


@pytest.fixture(scope="session")
def marker_adapter(tmp_path_factory: pytest.TempPathFactory, embedded_model_path: Path) -> Path:
    """The directory of the trained marker adapter (adapter_config.json + adapter_model.safetensors)."""
    pytest.importorskip("peft")
    target = tmp_path_factory.getbasetemp() / "marker-adapter"
    with FileLock(str(target) + ".lock"):
        if not (target / _DONE).is_file():
            summary = train_marker_adapter(embedded_model_path, target)
            assert summary["last_loss"] < summary["first_loss"] / 4, summary
    return target
