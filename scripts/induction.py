"""A model with a real circuit: a 2-layer attention-only transformer trained, seeded, on
sequences of random tokens repeated twice, the task on which Olsson et al. (2022) found
induction heads. The second half can only be predicted by looking back at what followed the
current token's earlier occurrence: a previous-token head in layer 0 feeding an induction head
in layer 1 (K-composition) does it. The half's length varies from batch to batch: with one
fixed length a layer-0 head learns to look back that many positions (no circuit needed).

    model, stats = train()        # AttnOnly in eval mode; stats: steps, losses, seconds
    ids = sequences(n, seed)      # [n, 1 + 2 * HALF]: BOS, random tokens, the same tokens again

Module paths follow TransformerLens's: embed, pos_embed, blocks.N.ln1, blocks.N.attn (qkv,
hook_pattern: [B, heads, query, key], hook_z: [B, S, heads * d_head], the input of out), ln_final,
unembed. hook_pattern and hook_z are identity modules: what torchscope captures and patches.
"""

import math
import time
from typing import Dict, Tuple

import torch
import torch.nn as nn
from torch import Tensor

SEED = 0
VOCAB = 64
HALF = 16  # the half's length of evaluation sequences
HALF_RANGE = (6, 24)  # the half's lengths seen in training
LAYERS = 2
HEADS = 4
D_MODEL = 64
BATCH = 64
LR = 3e-3
THREADS = 2  # the same weights on every machine with 2 cores or more
MAX_STEPS = 4000
# Training stops once the repeated half's loss, averaged over the last 50 steps, is below this.
TARGET_LOSS = 0.2


class Attention(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.heads = HEADS
        self.d_model = D_MODEL
        self.qkv = nn.Linear(D_MODEL, 3 * D_MODEL)
        self.hook_pattern = nn.Identity()
        self.hook_z = nn.Identity()
        self.out = nn.Linear(D_MODEL, D_MODEL)

    def forward(self, x: Tensor) -> Tensor:
        batch, seq, _ = x.shape
        d_head = self.d_model // self.heads
        q, k, v = self.qkv(x).split(self.d_model, dim=-1)
        q = q.view(batch, seq, self.heads, d_head).transpose(1, 2)
        k = k.view(batch, seq, self.heads, d_head).transpose(1, 2)
        v = v.view(batch, seq, self.heads, d_head).transpose(1, 2)
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(d_head)
        causal = torch.ones(seq, seq, dtype=torch.bool, device=x.device).tril()
        pattern = self.hook_pattern(scores.masked_fill(~causal, float("-inf")).softmax(-1))
        z = self.hook_z(torch.matmul(pattern, v).transpose(1, 2).reshape(batch, seq, self.d_model))
        return self.out(z)


class Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(D_MODEL)
        self.attn = Attention()

    def forward(self, x: Tensor) -> Tensor:
        return x + self.attn(self.ln1(x))


class AttnOnly(nn.Module):
    """[B, S] token ids -> [B, S, VOCAB] logits."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(VOCAB, D_MODEL)
        self.pos_embed = nn.Embedding(4 * HALF_RANGE[1], D_MODEL)
        self.blocks = nn.ModuleList([Block() for _ in range(LAYERS)])
        self.ln_final = nn.LayerNorm(D_MODEL)
        self.unembed = nn.Linear(D_MODEL, VOCAB)

    def forward(self, ids: Tensor) -> Tensor:
        positions = torch.arange(ids.shape[1], device=ids.device)
        x = self.embed(ids) + self.pos_embed(positions)
        for block in self.blocks:
            x = block(x)
        return self.unembed(self.ln_final(x))


def sequences(count: int, seed: int, generator: torch.Generator = None, half: int = HALF) -> Tensor:
    """BOS (token 0), `half` random tokens from 1..VOCAB-1, the same tokens again."""
    g = generator if generator is not None else torch.Generator().manual_seed(seed)
    tokens = torch.randint(1, VOCAB, (count, half), generator=g)
    return torch.cat([torch.zeros(count, 1, dtype=torch.long), tokens, tokens], dim=1)


def losses(model: nn.Module, ids: Tensor) -> Tuple[Tensor, Tensor]:
    """Per-sequence mean next-token loss on the first (random) and the repeated half."""
    half = (ids.shape[1] - 1) // 2
    logits = model(ids[:, :-1])
    loss = nn.functional.cross_entropy(logits.reshape(-1, VOCAB), ids[:, 1:].reshape(-1), reduction="none").view(ids.shape[0], -1)
    return loss[:, :half].mean(1), loss[:, half:].mean(1)


def train() -> Tuple[AttnOnly, Dict[str, float]]:
    threads = torch.get_num_threads()
    torch.set_num_threads(THREADS)
    try:
        torch.manual_seed(SEED)
        model = AttnOnly()
        optimizer = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=0.01)
        generator = torch.Generator().manual_seed(SEED)
        recent = []
        start = time.perf_counter()
        step = 0
        for step in range(1, MAX_STEPS + 1):
            half = int(torch.randint(HALF_RANGE[0], HALF_RANGE[1] + 1, (1,), generator=generator))
            first, repeated = losses(model, sequences(BATCH, 0, generator, half))
            loss = torch.cat([first, repeated]).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            recent = (recent + [repeated.mean().item()])[-50:]
            if len(recent) == 50 and sum(recent) / 50 < TARGET_LOSS:
                break
        model.eval()
        with torch.no_grad():
            first, repeated = losses(model, sequences(256, SEED + 1))
        for parameter in model.parameters():
            parameter.requires_grad_(False)
        return model, {
            "steps": step,
            "seconds": time.perf_counter() - start,
            "first_half_loss": first.mean().item(),
            "repeated_half_loss": repeated.mean().item(),
            "chance_loss": math.log(VOCAB - 1),
        }
    finally:
        torch.set_num_threads(threads)
