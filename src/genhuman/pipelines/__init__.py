"""genhuman.pipelines"""
