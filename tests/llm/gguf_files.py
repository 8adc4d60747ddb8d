"""A tiny GGUF checkpoint written here with the `gguf` package, from a tiny HF model made here.

No model may be downloaded, and the packaged GGUFs take minutes to convert, so the conversion
tests export their own: a 2-layer Llama with grouped-query attention (4 query heads, 2 KV heads),
tied embeddings and a byte-level BPE tokenizer with ChatML special tokens and a chat template,
written the way llama.cpp's converter writes one (q/k rows permuted for its rotary layout, the
tokenizer as `gpt2` tokens + merges, licence in the metadata). Round-tripping it through
bdc_ray.llm.gguf must give back the same logits and the same token ids.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

CHAT_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
HEADS, KV_HEADS, HIDDEN, LAYERS, CONTEXT = 4, 2, 64, 2, 96


@dataclass(frozen=True)
class TinyGGUF:
    path: Path
    """The .gguf file."""
    hf_folder: Path
    """The HF model (and tokenizer) it was exported from."""


def _corpus() -> list[str]:
    lines = []
    for k in range(1, 40):
        lines.append(f"def add_{k}(x):\n    return x + {k}\n")
        lines.append(f"Write a function that adds {k} to a number.\n")
    return lines


def _tokenizer(folder: Path):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(
        _corpus(),
        trainers.BpeTrainer(
            vocab_size=400, special_tokens=SPECIALS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        ),
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe, eos_token="<|im_end|>", pad_token="<|endoftext|>", bos_token="<|im_start|>"
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.save_pretrained(folder)
    return tokenizer


def _hf_model(folder: Path, tokenizer):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=HIDDEN, intermediate_size=96, num_hidden_layers=LAYERS,
        num_attention_heads=HEADS, num_key_value_heads=KV_HEADS, max_position_embeddings=CONTEXT,
        rms_norm_eps=1e-5, rope_theta=10000.0, tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    model = LlamaForCausalLM(config)
    with torch.no_grad():  # norms away from 1, so a lost norm weight shows in the logits
        for name, param in model.named_parameters():
            if "norm" in name:
                param.uniform_(0.5, 1.5)
    model.save_pretrained(folder)
    return model


def _rotary_permute(weight, heads: int):
    """The row order llama.cpp's converter writes q/k projections in (its rotary layout)."""
    rows = weight.shape[0]
    return weight.reshape(heads, 2, rows // heads // 2, *weight.shape[1:]).swapaxes(1, 2).reshape(weight.shape)


def write_tiny_gguf(folder: Path, *, quantize: bool = False, license: str | None = "apache-2.0") -> TinyGGUF:
    """Export a fresh tiny model to `folder/tiny.gguf`; `quantize` stores the 2-D weights as Q8_0."""
    import gguf
    import numpy as np

    hf_folder = folder / "hf"
    tokenizer = _tokenizer(hf_folder)
    model = _hf_model(hf_folder, tokenizer)
    path = folder / ("tiny-q8_0.gguf" if quantize else "tiny.gguf")
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("bdc tiny test model")
    if license:
        writer.add_license(license)
    writer.add_context_length(CONTEXT)
    writer.add_embedding_length(HIDDEN)
    writer.add_block_count(LAYERS)
    writer.add_feed_forward_length(96)
    writer.add_head_count(HEADS)
    writer.add_head_count_kv(KV_HEADS)
    writer.add_rope_dimension_count(HIDDEN // HEADS)
    writer.add_rope_freq_base(10000.0)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_vocab_size(len(tokenizer))
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_Q8_0 if quantize else gguf.LlamaFileType.ALL_F32)

    state = json.loads(tokenizer.backend_tokenizer.to_str())
    vocab = sorted(tokenizer.get_vocab().items(), key=lambda kv: kv[1])
    writer.add_tokenizer_model("gpt2")
    writer.add_token_list([token for token, _ in vocab])
    writer.add_token_types(
        [gguf.TokenType.CONTROL if token in SPECIALS else gguf.TokenType.NORMAL for token, _ in vocab]
    )
    merges = state["model"]["merges"]
    writer.add_token_merges([m if isinstance(m, str) else " ".join(m) for m in merges])
    writer.add_bos_token_id(tokenizer.bos_token_id)
    writer.add_eos_token_id(tokenizer.eos_token_id)
    writer.add_pad_token_id(tokenizer.pad_token_id)
    writer.add_add_bos_token(False)
    writer.add_chat_template(CHAT_TEMPLATE)

    names = {
        "self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v",
        "self_attn.o_proj": "attn_output", "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up",
        "mlp.down_proj": "ffn_down", "input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm",
    }
    tensors = {"token_embd.weight": model.model.embed_tokens.weight, "output_norm.weight": model.model.norm.weight}
    for i, layer in enumerate(model.model.layers):
        for hf_name, gguf_name in names.items():
            module = layer.get_submodule(hf_name)
            weight = module.weight.detach()
            if gguf_name == "attn_q":
                weight = _rotary_permute(weight, HEADS)
            elif gguf_name == "attn_k":
                weight = _rotary_permute(weight, KV_HEADS)
            tensors[f"blk.{i}.{gguf_name}.weight"] = weight
    for name, tensor in tensors.items():
        array = tensor.detach().float().numpy().astype(np.float32)
        if quantize and array.ndim == 2:
            writer.add_tensor(name, gguf.quants.quantize(array, gguf.GGMLQuantizationType.Q8_0),
                              raw_dtype=gguf.GGMLQuantizationType.Q8_0)
        else:
            writer.add_tensor(name, array)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return TinyGGUF(path=path, hf_folder=hf_folder)
