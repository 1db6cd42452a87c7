"""genhuman.audio_features"""
