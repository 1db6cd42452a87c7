"""Diffusion pipelines, one thin file per family, composed from sampling/ and models/."""

from genhuman.pipelines.echomimic import EchoMimicPipeline, EchoMimicSettings, PipelineResult

__all__ = ["EchoMimicPipeline", "EchoMimicSettings", "PipelineResult"]
