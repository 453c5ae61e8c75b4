"""Model configuration → model, and the one call the engine makes on a batch.

Chapter ``reproductions/02_how_reproductions_run``. ``SequenceModelConfig`` builds
:class:`liquidssm.layers.SequenceModel` (S4 / Liquid-S4, which takes the valid ``lengths``);
``LrcSSMConfig`` builds :class:`liquidssm.lrcssm.LrcSSMModel` (equal-length series).
"""

from __future__ import annotations

import torch
from torch import nn

from liquidssm.configs import LrcSSMConfig, ModelConfig, SequenceModelConfig
from liquidssm.layers import SequenceModel
from liquidssm.lrcssm import LrcSSMModel

__all__ = ["build_model", "model_output", "newton_iterations"]


def build_model(config: ModelConfig, *, l_max: int | None = None) -> nn.Module:
    """The model a configuration describes (parameters drawn from torch's global RNG).

    ``l_max``: the task's sequence length (:func:`liquidssm.repro.taskbase.sequence_length`).
    An S4 / Liquid-S4 model whose configuration learns ``C̃`` (``c_param="tilde"``) and leaves
    ``l_max`` unset learns ``C̃`` at this length (chapter ``s4/03_s4_kernel``); a configured
    ``l_max`` wins. Ignored by the other models.
    """
    if l_max is not None and (isinstance(l_max, bool) or not isinstance(l_max, int) or l_max < 1):
        raise ValueError(f"l_max: expected the task's sequence length, an integer >= 1, got {l_max!r}")
    if isinstance(config, SequenceModelConfig):
        if l_max is not None and config.c_param == "tilde" and config.l_max is None:
            config = config.replace(l_max=l_max)  # type: ignore[assignment]
        return SequenceModel(config)
    if isinstance(config, LrcSSMConfig):
        return LrcSSMModel(config)
    raise TypeError(f"config: expected SequenceModelConfig or LrcSSMConfig, got {type(config).__name__}")


def model_output(model: nn.Module, config: ModelConfig, x: torch.Tensor,
                 lengths: torch.Tensor | None) -> torch.Tensor:
    """Logits/predictions ``(B, d_output)`` for a batch; ``lengths`` reach models that mask padding."""
    if isinstance(config, SequenceModelConfig):
        return model(x, lengths)
    if lengths is not None:
        raise ValueError("lengths: LrcSSMModel takes equal-length series; this task gave lengths")
    return model(x)


def newton_iterations(model: nn.Module) -> list[float] | None:
    """Mean Newton iterations per sequence of each LrcSSM block in the last forward (else None)."""
    inner = getattr(model, "module", model)
    if not isinstance(inner, LrcSSMModel):
        return None
    return [float(it.float().mean()) for it in inner.iterations()]
