"""genhuman.checkpoints"""
