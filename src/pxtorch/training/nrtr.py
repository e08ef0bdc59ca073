"""The NRTR guidance branch of PP-OCRv4/v5 recognisers (training only, "GTC").

PaddleOCR facts (``ppocr/modeling/heads/rec_multi_head.py`` ``MultiHead`` and ``rec_nrtr_head.py``
``Transformer``), used here with the PP-OCRv4/v5 mobile rec configs (``NRTRHead: nrtr_dim 384,
max_text_length 25``; ``use_pos`` off):

- ``before_gtc = Sequential(Flatten(2), FCTranspose(in_channels, nrtr_dim))``: the backbone map
  ``[B, C, H, W]`` becomes the memory ``[B, H*W, nrtr_dim]`` through a bias-free linear layer, with no
  positional encoding. It reads the backbone output directly (the CTC neck sees a detached copy,
  ``use_guide``), so this branch is what trains the backbone.
- ``Transformer(d_model=nrtr_dim, nhead=nrtr_dim // 32, num_encoder_layers=-1 (no encoder),
  num_decoder_layers=4, dim_feedforward=nrtr_dim * 4, attention_dropout_rate=0.0,
  residual_dropout_rate=0.1, scale_embedding=True)`` with ``out_channels + 1`` output classes.
- Decoder layer (``TransformerBlock``), post-norm, LayerNorm eps 1e-5:
  ``x = norm1(x + drop(self_attn(x, causal)))``; ``x = norm2(x + drop(cross_attn(x, memory)))``;
  ``x = norm3(x + drop(mlp(x)))``, ``mlp = fc1 -> ReLU -> drop -> fc2 -> drop``. Self-attention uses a
  fused ``qkv`` projection, cross-attention ``q`` and ``kv``; all with bias; scale ``head_dim ** -0.5``.
- Token embedding (``padding_idx=0``, init N(0, d^-0.5)) times ``sqrt(d_model)``, plus the sinusoidal
  encoding (sin on even, cos on odd features, ``10000 ** (-2i / d)``), then dropout 0.1.
- Output projection ``tgt_word_prj`` without bias. Every ``nn.Linear`` of the transformer is
  Xavier-normal initialised with zero bias (PaddleOCR's ``_init_weights``, applied last).
- Training (``forward_train``): ``tgt = label_gtc[:, :2 + length.max()]``; the decoder input is
  ``tgt[:, :-1]`` under a causal mask; the loss target is ``tgt[:, 1:]``. Current PaddleOCR passes no
  key-padding mask; this module adds one, which changes only the outputs at padded positions (the
  loss ignores them): with a causal mask a real token never sees a later pad.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["NRTRBranch"]


class _FCTranspose(nn.Module):
    """``[B, C, N]`` -> ``[B, N, out]`` (bias-free linear, PaddleOCR ``FCTranspose``)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.fc = nn.Linear(in_channels, out_channels, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.transpose(1, 2))


class _Attention(nn.Module):
    """Multi-head attention with PaddleOCR's parameter layout (``qkv`` or ``q`` + ``kv``, ``out_proj``)."""

    def __init__(self, dim: int, num_heads: int, dropout: float = 0.0, self_attn: bool = False) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.self_attn = self_attn
        self.dropout = dropout
        if self_attn:
            self.qkv = nn.Linear(dim, dim * 3)
        else:
            self.q = nn.Linear(dim, dim)
            self.kv = nn.Linear(dim, dim * 2)
        self.out_proj = nn.Linear(dim, dim)

    def forward(
        self, query: torch.Tensor, key: torch.Tensor | None = None, attn_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``query [B, N, C]``, ``key [B, M, C]`` (cross only), bool ``attn_mask`` (True = attend) -> ``[B, N, C]``."""
        b, n, c = query.shape
        if self.self_attn:
            q, k, v = self.qkv(query).reshape(b, n, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        else:
            assert key is not None
            q = self.q(query).reshape(b, n, self.num_heads, self.head_dim).transpose(1, 2)
            m = key.shape[1]
            k, v = self.kv(key).reshape(b, m, 2, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        drop = self.dropout if self.training else 0.0
        x = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, dropout_p=drop)
        return self.out_proj(x.transpose(1, 2).reshape(b, n, c))


class _Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int, drop: float) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.ReLU()
        self.fc2 = nn.Linear(hidden, dim)
        self.drop = nn.Dropout(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


class _DecoderLayer(nn.Module):
    """PaddleOCR ``TransformerBlock(with_self_attn=True, with_cross_attn=True)``, post-norm."""

    def __init__(self, dim: int, num_heads: int, dim_feedforward: int, attn_drop: float, drop: float) -> None:
        super().__init__()
        self.self_attn = _Attention(dim, num_heads, attn_drop, self_attn=True)
        self.norm1 = nn.LayerNorm(dim, eps=1e-5)
        self.dropout1 = nn.Dropout(drop)
        self.cross_attn = _Attention(dim, num_heads, attn_drop, self_attn=False)
        self.norm2 = nn.LayerNorm(dim, eps=1e-5)
        self.dropout2 = nn.Dropout(drop)
        self.mlp = _Mlp(dim, dim_feedforward, drop)
        self.norm3 = nn.LayerNorm(dim, eps=1e-5)
        self.dropout3 = nn.Dropout(drop)

    def forward(self, tgt: torch.Tensor, memory: torch.Tensor, self_mask: torch.Tensor | None) -> torch.Tensor:
        tgt = self.norm1(tgt + self.dropout1(self.self_attn(tgt, attn_mask=self_mask)))
        tgt = self.norm2(tgt + self.dropout2(self.cross_attn(tgt, key=memory)))
        return self.norm3(tgt + self.dropout3(self.mlp(tgt)))


class _Embeddings(nn.Module):
    """Token embedding scaled by ``sqrt(d_model)``; the padding row (0) is zero, as Paddle's lookup returns."""

    def __init__(self, d_model: int, vocab: int) -> None:
        super().__init__()
        self.d_model = d_model
        self.embedding = nn.Embedding(vocab, d_model, padding_idx=0)
        nn.init.normal_(self.embedding.weight, 0.0, d_model**-0.5)
        with torch.no_grad():
            self.embedding.weight[0].zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.embedding(x) * math.sqrt(self.d_model)


class _PositionalEncoding(nn.Module):
    """Sinusoidal encoding added to ``[B, L, D]``, then dropout."""

    def __init__(self, dim: int, dropout: float, max_len: int = 5000) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        position = torch.arange(max_len, dtype=torch.float32).unsqueeze(1)
        div_term = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
        pe = torch.zeros(max_len, dim)
        pe[:, 0::2] = torch.sin(position * div_term)
        pe[:, 1::2] = torch.cos(position * div_term)
        self.register_buffer("pe", pe, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(x + self.pe[: x.shape[1]].to(x.dtype))


class _GTCHead(nn.Module):
    """PaddleOCR ``Transformer`` without encoder (``num_encoder_layers=-1``), training path only."""

    def __init__(
        self,
        d_model: int,
        nhead: int,
        num_decoder_layers: int,
        dim_feedforward: int,
        vocab_size: int,
        attention_dropout: float = 0.0,
        residual_dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.embedding = _Embeddings(d_model, vocab_size)
        self.positional_encoding = _PositionalEncoding(d_model, residual_dropout)
        self.decoder = nn.ModuleList(
            _DecoderLayer(d_model, nhead, dim_feedforward, attention_dropout, residual_dropout)
            for _ in range(num_decoder_layers)
        )
        self.tgt_word_prj = nn.Linear(d_model, vocab_size, bias=False)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_normal_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, memory: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        """``memory [B, N, D]``, ``tgt_in [B, L]`` ids -> logits ``[B, L, V]``."""
        length = tgt_in.shape[1]
        x = self.positional_encoding(self.embedding(tgt_in))
        causal = torch.ones(length, length, dtype=torch.bool, device=tgt_in.device).tril()
        keep = tgt_in != 0
        keep[:, 0] = True  # never leave a query row without keys (all-padding rows stay finite)
        mask = causal[None, None] & keep[:, None, None, :]
        for layer in self.decoder:
            x = layer(x, memory, mask)
        return self.tgt_word_prj(x)


class NRTRBranch(nn.Module):
    """Training-only NRTR decoder fed by the recogniser backbone (PP-OCRv4/v5 ``MultiHead`` GTC branch).

    Args:
        in_channels: backbone output channels.
        vocab_size: output classes, :func:`pxtorch.training.labels.nrtr_vocab_size` (PaddleOCR head size).
        nrtr_dim: model width (384 in PP-OCRv4/v5 mobile); ``nhead = nrtr_dim // 32``,
            ``dim_feedforward = nrtr_dim * 4``.
        num_decoder_layers: decoder depth (4).
        max_text_length: kept for reference (PaddleOCR's greedy decoding length); unused in training.
        dropout: residual/MLP/positional dropout (PaddleOCR ``residual_dropout_rate`` 0.1); attention
            dropout is 0 as in PaddleOCR.
    """

    def __init__(
        self,
        in_channels: int,
        vocab_size: int,
        nrtr_dim: int = 384,
        num_decoder_layers: int = 4,
        max_text_length: int = 25,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.vocab_size = vocab_size
        self.max_text_length = max_text_length
        self.before_gtc = nn.Sequential(nn.Flatten(2), _FCTranspose(in_channels, nrtr_dim))
        nn.init.xavier_uniform_(self.before_gtc[1].fc.weight)  # Paddle's default Linear initialiser
        self.gtc_head = _GTCHead(
            d_model=nrtr_dim,
            nhead=nrtr_dim // 32,
            num_decoder_layers=num_decoder_layers,
            dim_feedforward=nrtr_dim * 4,
            vocab_size=vocab_size,
            attention_dropout=0.0,
            residual_dropout=dropout,
        )

    def forward(self, feats: torch.Tensor, tgt: torch.Tensor) -> torch.Tensor:
        """Teacher-forced logits.

        Args:
            feats: backbone output ``[B, C, H, W]`` (``[B, C, 1, T]`` for the rec backbones).
            tgt: NRTR ids ``[B, L]``: ``<s> text </s>`` then 0-padding, usually
                ``label_gtc[:, :2 + lengths.max()]``.

        Returns:
            logits ``[B, L - 1, vocab_size]`` for the inputs ``tgt[:, :-1]``; their targets are ``tgt[:, 1:]``.
        """
        memory = self.before_gtc(feats)
        return self.gtc_head(memory, tgt[:, :-1])

    @staticmethod
    def paddle_key_map(name: str) -> str | None:
        """PaddleOCR rec checkpoint name (``head.before_gtc.*`` / ``head.gtc_head.*``) -> key here, else ``None``."""
        for prefix in ("head.before_gtc.", "head.gtc_head."):
            if name.startswith(prefix):
                key = name.removeprefix("head.")
                return None if key.endswith("positional_encoding.pe") else key
        return None
