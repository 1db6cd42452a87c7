"""genhuman.face"""
