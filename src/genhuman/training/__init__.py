"""Training and phased step distillation for the reference-net + 3D-UNet families (EchoMimic V1).

The trainers call the inference networks (:mod:`genhuman.models`) and the inference scheduler
(:func:`genhuman.sampling.echomimic_scheduler`) themselves, never copies: a trained folder is an
ordinary weights folder for ``genhuman animate --engine echomimic --weights DIR``.

- :mod:`~genhuman.training.config`: typed configs (saved next to every checkpoint).
- :mod:`~genhuman.training.dataset`: the prepared layout (``genhuman data prepare``) as batches.
- :mod:`~genhuman.training.model`: the trainable bundle, the uncond dropouts, the v-prediction loss.
- :mod:`~genhuman.training.loop`: accelerate, EMA, logs, resume.
- :mod:`~genhuman.training.stage1`, :mod:`~genhuman.training.stage2`: which parameters each stage trains.
- :mod:`~genhuman.training.distill`: phased multistep-consistency distillation.
- :mod:`~genhuman.training.checkpoint`: GenHuman's safetensors layout and the official file layout.
"""
