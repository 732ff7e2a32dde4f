"""A tiny, randomly initialised SPACE-T model directory, built from modelscope's own model classes.

The layout is the real model's (damo/nlp_convai_text2sql_pretrain_cn): `configuration.json` (ModelScope's
config holding the encoder's sizes), `pytorch_model.bin` ({backbone_model, head_model} state dicts) and
`vocab.txt`. Only the sizes are small: one encoder layer of width 32, and a vocabulary written here from the
words and characters the tests use. Random weights give arbitrary (but well-formed) structured queries; only the value pointers are fixed (below).
"""

from __future__ import annotations

import json
from pathlib import Path

# SPACE-T's input markers (modelscope's space_T_cn model builds its input from these words).
_MARKERS = ["select", "where", "action", "connect", "allen", "act", "size", "focus", "空", "列"]
_SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def write_tiny_spacet(directory: Path, *, words: list[str], seed: int = 0, sizes: dict | None = None) -> Path:
    """Write the model into `directory`; `words` are tokens for the vocabulary (Chinese text is split per
    character by BERT's tokenizer, so give characters; English is split at punctuation). `sizes` overrides the
    encoder's (hidden_size, num_hidden_layers, ...): the real model's make a full-size random model."""
    import torch
    from modelscope.models.nlp.space_T_cn.backbone import Seq2SQL, SpaceTCnModel
    from modelscope.models.nlp.space_T_cn.configuration import SpaceTCnConfig
    from modelscope.preprocessors.nlp.space_T_cn.fields.struct import Constant

    directory.mkdir(parents=True, exist_ok=True)
    vocabulary = list(dict.fromkeys([*_SPECIAL, *_MARKERS, *(w.lower() for w in words)]))
    (directory / "vocab.txt").write_text("\n".join(vocabulary) + "\n", encoding="utf-8")
    encoder = {
        "vocab_size": len(vocabulary),
        "hidden_size": 32,
        "num_hidden_layers": 1,
        "num_attention_heads": 2,
        "intermediate_size": 64,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.0,
        "attention_probs_dropout_prob": 0.0,
        "max_position_embeddings": 512,
        "type_vocab_size": 2,
        "initializer_range": 0.02,
        **(sizes or {}),
    }
    configuration = {
        "framework": "pytorch",
        "task": "table-question-answering",
        "model": {"type": "space-T-cn"},
        "pipeline": {"type": "table-question-answering-pipeline"},
        "preprocessor": {"type": "table-question-answering-preprocessor"},
        **encoder,
    }
    (directory / "configuration.json").write_text(json.dumps(configuration, indent=2), encoding="utf-8")
    torch.manual_seed(seed)
    backbone = SpaceTCnModel(config=SpaceTCnConfig.from_dict(encoder), schema_link_module="rat")
    constant = Constant()
    # The head's arguments as modelscope's TableQuestionAnswering builds it.
    head = Seq2SQL(
        encoder["hidden_size"], 100, 2, 0.0, len(constant.cond_ops), len(constant.agg_ops),
        len(constant.action_ops), constant.max_select_num, constant.max_where_num, device="cpu",
    )
    # The value pointers (where a condition's value starts and ends in the question) score every position alike,
    # so they point at its first character: SPACE-T's post-processing fails (KeyError) on a span that runs past
    # the question's end, which random pointers often give.
    with torch.no_grad():
        for pointer in (head.w_sss_model, head.w_sse_model):
            pointer.weight.zero_()
            pointer.bias.zero_()
    torch.save({"backbone_model": backbone.state_dict(), "head_model": head.state_dict()}, directory / "pytorch_model.bin")
    return directory
