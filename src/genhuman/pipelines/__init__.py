"""Diffusion pipelines at the tensor level: one shared core, one thin file per family."""

from genhuman.pipelines.core import Control, PipelineOutput, Reference, ReferenceVideoPipeline
from genhuman.pipelines.echomimic import EchoMimicPipeline
from genhuman.pipelines.echomimic_v2 import EchoMimicV2Pipeline

__all__ = ["Control", "EchoMimicPipeline", "EchoMimicV2Pipeline", "PipelineOutput", "Reference",
           "ReferenceVideoPipeline"]
