"""A tiny model built from scratch once per session, and real HTTP servers on 127.0.0.1.

Nothing may be downloaded, so the fixture trains its own: a byte-level BPE tokenizer and a
2-layer Llama on a few hundred one-line Python functions, plus two LoRA adapters on different
text, all saved in HF format and then loaded by path like any checkpoint. About 5 s on one core.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import random
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SEED = 0


@dataclass(frozen=True)
class TinyModel:
    path: str
    adapters: dict[str, str]


def _corpus(rng: random.Random, count: int) -> list[str]:
    ops = [("add", "+"), ("sub", "-"), ("mul", "*")]
    lines = []
    for _ in range(count):
        name, op = rng.choice(ops)
        k, var = rng.randint(1, 9), rng.choice("xyzab")
        lines.append(f"def {name}_{k}({var}):\n    return {var} {op} {k}\n")
    return lines


def _batch(tokenizer, texts: list[str]):
    import torch

    ids = [tokenizer(t)["input_ids"] + [tokenizer.eos_token_id] for t in texts]
    width = max(map(len, ids))
    inputs = torch.full((len(ids), width), tokenizer.pad_token_id)
    labels = torch.full((len(ids), width), -100)
    for row, seq in enumerate(ids):
        inputs[row, : len(seq)] = torch.tensor(seq)
        labels[row, : len(seq)] = torch.tensor(seq)
    return inputs, (labels != -100).long(), labels


def _train(model, tokenizer, texts: list[str], steps: int, lr: float, rng: random.Random) -> None:
    import torch

    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)
    model.train()
    for _ in range(steps):
        inputs, mask, labels = _batch(tokenizer, rng.sample(texts, min(16, len(texts))))
        model(input_ids=inputs, attention_mask=mask, labels=labels).loss.backward()
        optimizer.step()
        optimizer.zero_grad()


def build_tiny_model(folder: Path) -> TinyModel:
    import torch
    from peft import LoraConfig, get_peft_model
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    rng = random.Random(SEED)
    corpus = _corpus(rng, 300)
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(
        corpus,
        trainers.BpeTrainer(
            vocab_size=320,
            special_tokens=["<eos>", "<pad>"],
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            show_progress=False,
        ),
    )
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<eos>", pad_token="<pad>")
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=128,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=None,
        tie_word_embeddings=True,
    )
    torch.manual_seed(SEED)
    model = LlamaForCausalLM(config)
    _train(model, tokenizer, corpus, steps=120, lr=3e-3, rng=rng)
    base = folder / "base"
    model.save_pretrained(base)
    tokenizer.save_pretrained(base)

    adapters = {}
    for name, text in {
        "alpha": "def div_5(q):\n    return q // 5\n",
        "beta": "def pow_2(w):\n    return w ** 2\n",
    }.items():
        torch.manual_seed(SEED)
        lora = get_peft_model(
            AutoModelForCausalLM.from_pretrained(base),
            LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "o_proj", "down_proj"]),
        )
        _train(lora, tokenizer, [text], steps=40, lr=1e-2, rng=rng)
        adapters[name] = str(folder / name)
        lora.save_pretrained(adapters[name])
    return TinyModel(path=str(base), adapters=adapters)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> TinyModel:
    import torch

    torch.set_num_threads(1)
    return build_tiny_model(tmp_path_factory.mktemp("tiny-llm"))


@pytest.fixture(scope="session")
def tiny_gguf(tmp_path_factory: pytest.TempPathFactory):
    """A tiny GGUF (GQA, tied embeddings, ChatML template) written with the gguf package; about 2 s."""
    from tests.llm.gguf_files import write_tiny_gguf

    return write_tiny_gguf(tmp_path_factory.mktemp("gguf"))


@pytest.fixture(scope="session")
def chat_model(tiny_gguf, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The tiny GGUF converted to an HF folder: a model with a chat template and a 96-token context."""
    from bdc_ray.llm.gguf import ensure_converted

    return str(ensure_converted([str(tiny_gguf.path)], tmp_path_factory.mktemp("converted")))


@pytest.fixture(scope="session")
def hf_llm(tiny_model: TinyModel):
    from bdc_ray.llm.hf_backend import TransformersLLM

    return TransformersLLM(tiny_model.path, adapters=tiny_model.adapters, device="cpu", threads=1, max_batch_size=4)


class BackgroundServer:
    """uvicorn serving an ASGI app on a free 127.0.0.1 port from a daemon thread."""

    def __init__(self, app) -> None:
        import uvicorn

        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", 0))
        self.port = self._socket.getsockname()[1]
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
        self._thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self._socket]}, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> BackgroundServer:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self._thread.join(timeout=10)
        self._socket.close()


@pytest.fixture(scope="session")
def background_server() -> type[BackgroundServer]:
    """The server class, for tests that run apps of their own."""
    return BackgroundServer


@pytest.fixture(scope="session")
def model_server(hf_llm) -> Iterator[BackgroundServer]:
    from bdc_ray.llm.openai_server import create_app

    with BackgroundServer(create_app(hf_llm, "tiny", hf_llm.adapters)) as server:
        yield server
