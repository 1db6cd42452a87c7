"""genhuman.server"""
