"""genhuman.models"""
