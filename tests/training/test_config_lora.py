"""Configs (files, unknown keys, saved copies) and the LoRA option (adapters only, merged save)."""

from __future__ import annotations

import json

import pytest
import torch

from genhuman.cli import main
from genhuman.errors import InputError
from genhuman.training.config import CONFIG_FILE, DistillConfig, TrainConfig, read_config_file
from genhuman.training.runner import load_components, plain_networks, prepare_bundle


def test_config_files_round_trip_and_refuse_unknown_keys(tmp_path):
    yaml_file = tmp_path / "c.yaml"
    yaml_file.write_text("stage: stage2\nsteps: 7\nframes: 4\n")
    config = TrainConfig.from_dict(read_config_file(yaml_file))
    assert (config.stage, config.steps, config.frames) == ("stage2", 7, 4)
    saved = config.save(tmp_path / "ckpt")
    assert saved.name == CONFIG_FILE and TrainConfig.from_dict(read_config_file(saved)) == config
    with pytest.raises(InputError, match="unknown keys learning_rte"):
        TrainConfig.from_dict({"learning_rte": 1.0})
    with pytest.raises(InputError, match="loss must be one of"):
        DistillConfig.from_dict({"loss": "l1"})


@pytest.mark.parametrize("argv, message", [
    (["train", "stage1", "--data", "{tmp}/nowhere", "--out", "{tmp}/o"], "data folder not found"),
    (["train", "stage1", "--config", "{tmp}/bad.json", "--data", "{tmp}", "--out", "{tmp}/o"], "unknown keys colour"),
    (["distill", "--teacher", "{tmp}", "--data", "{tmp}", "--out", "{tmp}/o", "--phases", "3"],
     "--phases 3 does not divide --teacher-steps 40"),
    (["train", "stage2", "--data", "{tmp}", "--out", "{tmp}/o"], "is not a prepared data set"),
])
def test_cli_bad_inputs_give_one_line_and_exit_2(tmp_path, capsys, argv, message):
    (tmp_path / "bad.json").write_text(json.dumps({"colour": "red"}))
    code = main([a.replace("{tmp}", str(tmp_path)) for a in argv])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_lora_trains_adapters_only_and_saves_merged_weights(weights):
    config = TrainConfig(stage="stage2", init=str(weights), lora_rank=2)
    components = load_components(config.init)
    base = {k: v.clone() for k, v in components.denoising_unet.state_dict().items()}
    bundle = prepare_bundle(config, components)
    trainable = [n for n, p in bundle.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    assert all("motion_modules" in n or ".attn2." in n for n in trainable)
    name = next(n for n in trainable if n.endswith("lora_B.default.weight"))
    with torch.no_grad():
        dict(bundle.named_parameters())[name].fill_(0.01)  # peft starts B at zero: make the delta visible
    merged = plain_networks(bundle)["denoising_unet"].state_dict()
    assert merged.keys() == base.keys()
    layer = name[len("denoising_unet."):-len(".lora_B.default.weight")]
    params = dict(bundle.denoising_unet.named_parameters())
    a, b = params[f"{layer}.lora_A.default.weight"], params[f"{layer}.lora_B.default.weight"]
    expected = base[f"{layer}.weight"] + (b @ a) * (2 / 2)  # alpha defaults to the rank: scale 1
    torch.testing.assert_close(merged[f"{layer}.weight"], expected)
    changed = [k for k in base if not torch.equal(base[k], merged[k])]
    assert changed == [f"{layer}.weight"]
