"""Diffusion pipelines at the tensor level: one shared core, one thin file per family."""

from genhuman.pipelines.core import Control, PipelineOutput, Reference, ReferenceVideoPipeline
from genhuman.pipelines.echomimic import EchoMimicPipeline
from genhuman.pipelines.echomimic_v2 import EchoMimicV2Pipeline
from genhuman.pipelines.hallo import HalloClip, HalloPipeline, HalloPortrait

__all__ = ["Control", "EchoMimicPipeline", "EchoMimicV2Pipeline", "HalloClip", "HalloPipeline", "HalloPortrait",
           "PipelineOutput", "Reference", "ReferenceVideoPipeline"]
