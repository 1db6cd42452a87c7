"""genhuman.media"""
