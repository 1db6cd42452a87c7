"""genhuman.sampling"""
