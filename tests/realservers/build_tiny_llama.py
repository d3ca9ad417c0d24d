"""Builds a tiny random-weight Llama that vLLM can serve, from nothing downloaded.

    .venv-vllm/bin/python tests/realservers/build_tiny_llama.py OUT_DIR TEXT_FILE...

Run with the vLLM venv's Python (transformers, tokenizers and torch live there, not in
the project's venv). The model: hidden 128, 2 layers, a byte-level BPE tokenizer trained
on the given local text, a ChatML chat template. It has no end-of-sequence token and the
special tokens' output rows are zero, so every answer runs to max_tokens: the tests
count exactly what they asked for.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
CHATML = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
VOCAB = 1024


def train_tokenizer(out: Path, texts: list[Path]) -> int:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(vocab_size=VOCAB, special_tokens=SPECIALS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train([str(p) for p in texts], trainer)
    tok.save(str(out / "tokenizer.json"))
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast", "model_max_length": 512,
        "bos_token": None, "eos_token": None, "pad_token": "<|endoftext|>",
        "unk_token": None, "chat_template": CHATML, "clean_up_tokenization_spaces": False,
    }
    (out / "tokenizer_config.json").write_text(json.dumps(config, indent=1))
    return tok.get_vocab_size()


def build_model(out: Path, vocab: int) -> None:
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=vocab, hidden_size=128, intermediate_size=256, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=2, head_dim=64,
        max_position_embeddings=512, bos_token_id=None, eos_token_id=None,
        pad_token_id=0, tie_word_embeddings=False, torch_dtype="float32",
    )
    model = LlamaForCausalLM(config)
    never_special(model, len(SPECIALS))
    model.save_pretrained(out, safe_serialization=True)
    gen = out / "generation_config.json"
    gen.write_text(json.dumps({"do_sample": True, "temperature": 1.0}))


def never_special(model, specials: int) -> None:
    """Makes the special tokens (ids 0..specials-1) never drawn: hidden dimension 0 holds
    a constant (every embedding's is 10; no layer writes to it), so after the final norm
    it is always positive, and their output rows read only it, negatively. Zero rows alone
    are not enough: random rows give the other tokens negative logits, below 0."""
    import torch

    with torch.no_grad():
        model.model.embed_tokens.weight[:, 0] = 10.0
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight[0, :] = 0.0
            layer.mlp.down_proj.weight[0, :] = 0.0
        head = model.lm_head.weight
        head[:, 0] = 0.0
        head[:specials] = 0.0
        head[:specials, 0] = -10.0


def main(argv: list[str]) -> int:
    out, texts = Path(argv[0]), [Path(p) for p in argv[1:]]
    out.mkdir(parents=True, exist_ok=True)
    build_model(out, train_tokenizer(out, texts))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
