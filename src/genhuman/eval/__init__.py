"""genhuman.eval"""
