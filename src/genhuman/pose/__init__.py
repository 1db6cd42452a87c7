"""genhuman.pose"""
