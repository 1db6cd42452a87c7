"""genhuman.speech"""
